#include "cli/text_io.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace kiln::cli {

std::filesystem::path tokenizer_dir(const std::string& tokenizer, const std::string& engine) {
  if (tokenizer.empty() == engine.empty()) throw_error("give exactly one of --tokenizer DIR and --engine DIR");
  if (!tokenizer.empty()) return tokenizer;
  const auto dir = std::filesystem::path(engine) / "tokenizer";
  if (!std::filesystem::is_directory(dir)) {
    throw_error("engine ", engine, " carries no tokenizer/ (its checkpoint had no tokenizer files)");
  }
  return dir;
}

std::string read_text_file(const std::string& path, const char* option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(option, ": cannot read ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json read_messages(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path, "--messages"));
  } catch (const nlohmann::json::exception& e) {
    throw_error(path, " is not valid JSON: ", e.what());
  }
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  if (!j.is_array()) throw_error(path, " must hold a JSON array of {\"role\", \"content\"} messages");
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object() || !j[i].contains("role") || !j[i].contains("content")) {
      throw_error(path, ": message ", i, " needs \"role\" and \"content\"");
    }
  }
  return j;
}

}  // namespace kiln::cli
