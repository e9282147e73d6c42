// The INI dialect of ~/.aws/credentials and ~/.aws/config: [section] headers,
// `key = value` lines, '#' and ';' comments.
#pragma once

#include <map>
#include <string>

namespace kiln::storage {

using IniSection = std::map<std::string, std::string>;
using IniFile = std::map<std::string, IniSection>;

IniFile parse_ini(const std::string& text);
// The parsed file, or an empty one when it does not exist.
IniFile read_ini_file(const std::string& path);

}  // namespace kiln::storage
