#include "storage/ini_file.h"

#include <fstream>
#include <sstream>

namespace kiln::storage {

namespace {
std::string trim(const std::string& s) {
  const std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const std::size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}
}  // namespace

IniFile parse_ini(const std::string& text) {
  IniFile ini;
  std::istringstream in(text);
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      ini[section];
      continue;
    }
    const std::size_t eq = line.find('=');
    // Nested values (an indented "s3 =" block) are not credentials; skip them.
    if (eq == std::string::npos || section.empty()) continue;
    ini[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return ini;
}

IniFile read_ini_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_ini(text.str());
}

}  // namespace kiln::storage
