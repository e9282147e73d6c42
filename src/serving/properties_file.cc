#include "serving/properties_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace kiln::serving {
namespace {

// Properties.load's whitespace: space, tab and form feed (line ends split lines).
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f'; }

size_t skip_blanks(std::string_view s, size_t i) {
  while (i < s.size() && is_blank(s[i])) ++i;
  return i;
}

// Backslashes immediately before position `end`.
size_t backslashes_before(std::string_view s, size_t end) {
  size_t n = 0;
  while (n < end && s[end - 1 - n] == '\\') ++n;
  return n;
}

// The natural lines of the text: split at \n, \r\n or \r.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

void append_utf8(std::string& out, unsigned code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// Resolves the escapes of a key or value.
std::string unescape(std::string_view s, const std::string& where) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        unsigned code = 0;
        for (int k = 0; k < 4; ++k) {
          char h = i + 1 < s.size() ? s[++i] : '\0';
          int digit = h >= '0' && h <= '9'   ? h - '0'
                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                             : -1;
          if (digit < 0) throw_error(where, ": malformed \\uXXXX escape (four hex digits expected)");
          code = code * 16 + static_cast<unsigned>(digit);
        }
        append_utf8(out, code);
        break;
      }
      default: out += c;
    }
  }
  return out;
}

// Splits one logical line (continuations joined, leading blanks removed) into key and value.
Property split_entry(std::string_view line, int line_number, const std::string& source) {
  size_t key_end = 0;
  while (key_end < line.size()) {
    char c = line[key_end];
    if (c == '\\') {
      key_end += 2;  // the escaped character belongs to the key
      continue;
    }
    if (c == '=' || c == ':' || is_blank(c)) break;
    ++key_end;
  }
  key_end = std::min(key_end, line.size());
  size_t value_start = skip_blanks(line, key_end);
  if (value_start < line.size() && (line[value_start] == '=' || line[value_start] == ':')) {
    value_start = skip_blanks(line, value_start + 1);
  }
  std::string_view value = line.substr(value_start);
  // Drop trailing blanks unless escaped (an odd run of backslashes before one).
  while (!value.empty() && is_blank(value.back()) && backslashes_before(value, value.size() - 1) % 2 == 0) {
    value.remove_suffix(1);
  }
  std::string where = concat(source, ":", line_number);
  return Property{unescape(line.substr(0, key_end), where), unescape(value, where), line_number};
}

}  // namespace

std::vector<Property> parse_properties(std::string_view text, const std::string& source) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark from some editors
  std::vector<std::string_view> lines = split_lines(text);
  std::vector<Property> entries;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view first = lines[i].substr(skip_blanks(lines[i], 0));
    // Comment lines never continue, even when they end in a backslash.
    if (first.empty() || first[0] == '#' || first[0] == '!') continue;
    int line_number = static_cast<int>(i) + 1;
    std::string logical(first);
    while (backslashes_before(logical, logical.size()) % 2 == 1) {
      logical.pop_back();
      if (i + 1 == lines.size()) break;  // a continuation at the end of the file continues into nothing
      std::string_view next = lines[++i];
      logical += next.substr(skip_blanks(next, 0));
    }
    entries.push_back(split_entry(logical, line_number, source));
  }
  return entries;
}

std::vector<Property> read_properties_file(const std::filesystem::path& file) {
  // Linux opens a directory for reading and only the reads fail; say what is wrong instead.
  if (std::filesystem::is_directory(file)) throw_error("cannot read ", file.string(), ": it is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_error("cannot read ", file.string(), ": ", std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_error("cannot read ", file.string(), ": ", std::strerror(errno));
  return parse_properties(text, file.string());
}

}  // namespace kiln::serving
