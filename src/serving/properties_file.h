// Java-properties files, the format of DJL Serving's serving.properties: the
// subset of java.util.Properties.load that such files use, so a file LMI
// accepts reads the same here.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::serving {

// One key=value entry and the line it starts on (1-based), for messages.
struct Property {
  std::string key;
  std::string value;
  int line = 0;
};

// Parses properties text, entries in file order (a repeated key appears twice;
// the reader decides that the last wins, as Properties.load does):
// - `#` or `!` as the first non-blank character starts a comment line;
// - the key ends at the first unescaped `=`, `:` or blank; blanks around the
//   separator are skipped, so `key = value`, `key:value` and `key value` agree;
// - a line ending in an odd number of backslashes continues on the next line,
//   whose leading blanks are dropped;
// - escapes \t \n \r \f \uXXXX, and `\c` for any other c is c (`\=`, `\ `, `\\`).
// One departure: trailing blanks of a value are dropped (Java keeps them), since
// `option.dtype=fp16 ` is never meant to end in a space; write `\ ` to keep one.
// `source` names the text in errors (a malformed \u escape).
std::vector<Property> parse_properties(std::string_view text, const std::string& source);

// Reads and parses a properties file; throws kiln::Error naming the file if it
// cannot be read.
std::vector<Property> read_properties_file(const std::filesystem::path& file);

}  // namespace kiln::serving
