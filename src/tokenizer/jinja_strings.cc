#include "tokenizer/jinja_strings.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tokenizer/jinja_unicode.h"
#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

namespace {

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

// Clamps a Python-style [start, end) pair (negative counts from the end) to [0, length].
std::pair<std::size_t, std::size_t> clamp_range(std::optional<std::int64_t> start, std::optional<std::int64_t> end,
                                                std::size_t length) {
  const auto n = static_cast<std::int64_t>(length);
  auto fix = [n](std::int64_t i) {
    if (i < 0) i += n;
    return static_cast<std::size_t>(std::clamp<std::int64_t>(i, 0, n));
  };
  return {start ? fix(*start) : 0, end ? fix(*end) : length};
}

}  // namespace

std::string py_strip(std::string_view text, const std::optional<std::string>& chars, StripSide side) {
  const std::u32string strip_set = chars ? decode_utf8(*chars) : std::u32string();
  auto strips = [&](char32_t c) { return chars ? strip_set.find(c) != std::u32string::npos : is_space(c); };
  const std::u32string code_points = decode_utf8(text);
  std::size_t begin = 0, end = code_points.size();
  if (side != StripSide::kRight) {
    while (begin < end && strips(code_points[begin])) ++begin;
  }
  if (side != StripSide::kLeft) {
    while (end > begin && strips(code_points[end - 1])) --end;
  }
  return encode_utf8(std::u32string_view(code_points).substr(begin, end - begin));
}

std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& separator,
                                  std::int64_t max_split) {
  std::vector<std::string> parts;
  if (separator) {
    if (separator->empty()) throw_python_error("ValueError", "empty separator");
    std::size_t pos = 0;
    while (max_split < 0 || static_cast<std::int64_t>(parts.size()) < max_split) {
      const std::size_t found = text.find(*separator, pos);
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(pos, found - pos));
      pos = found + separator->size();
    }
    parts.emplace_back(text.substr(pos));
    return parts;
  }
  const std::u32string code_points = decode_utf8(text);
  std::size_t i = 0;
  const std::size_t n = code_points.size();
  while (true) {
    while (i < n && is_space(code_points[i])) ++i;
    if (i == n) break;
    if (max_split >= 0 && static_cast<std::int64_t>(parts.size()) == max_split) {
      // The remainder keeps its inner and trailing whitespace.
      parts.push_back(encode_utf8(std::u32string_view(code_points).substr(i)));
      break;
    }
    const std::size_t start = i;
    while (i < n && !is_space(code_points[i])) ++i;
    parts.push_back(encode_utf8(std::u32string_view(code_points).substr(start, i - start)));
  }
  return parts;
}

std::vector<std::string> py_rsplit(std::string_view text, const std::optional<std::string>& separator,
                                   std::int64_t max_split) {
  std::vector<std::string> parts;
  if (separator) {
    if (separator->empty()) throw_python_error("ValueError", "empty separator");
    std::size_t end = text.size();
    while (max_split < 0 || static_cast<std::int64_t>(parts.size()) < max_split) {
      if (end < separator->size()) break;
      const std::size_t found = text.rfind(*separator, end - separator->size());
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(found + separator->size(), end - found - separator->size()));
      end = found;
    }
    parts.emplace_back(text.substr(0, end));
  } else {
    const std::u32string code_points = decode_utf8(text);
    std::size_t i = code_points.size();
    while (true) {
      while (i > 0 && is_space(code_points[i - 1])) --i;
      if (i == 0) break;
      if (max_split >= 0 && static_cast<std::int64_t>(parts.size()) == max_split) {
        parts.push_back(encode_utf8(std::u32string_view(code_points).substr(0, i)));
        break;
      }
      const std::size_t end = i;
      while (i > 0 && !is_space(code_points[i - 1])) --i;
      parts.push_back(encode_utf8(std::u32string_view(code_points).substr(i, end - i)));
    }
  }
  return {parts.rbegin(), parts.rend()};
}

std::vector<std::string> py_splitlines(std::string_view text, bool keep_ends) {
  std::vector<std::string> lines;
  const std::u32string code_points = decode_utf8(text);
  std::size_t start = 0, i = 0;
  while (i < code_points.size()) {
    if (!is_line_break(code_points[i])) {
      ++i;
      continue;
    }
    std::size_t end_of_break = i + 1;
    if (code_points[i] == '\r' && end_of_break < code_points.size() && code_points[end_of_break] == '\n') {
      ++end_of_break;
    }
    const std::size_t line_end = keep_ends ? end_of_break : i;
    lines.push_back(encode_utf8(std::u32string_view(code_points).substr(start, line_end - start)));
    start = i = end_of_break;
  }
  if (start < code_points.size()) lines.push_back(encode_utf8(std::u32string_view(code_points).substr(start)));
  return lines;
}

std::string py_replace(std::string_view text, std::string_view old_part, std::string_view new_part,
                       std::int64_t count) {
  std::string out;
  if (old_part.empty()) {
    // Python inserts the replacement before every character and at the end.
    const std::u32string code_points = decode_utf8(text);
    std::int64_t done = 0;
    for (char32_t c : code_points) {
      if (count < 0 || done < count) {
        out += new_part;
        ++done;
        check_string_size(out.size());
      }
      append_utf8(out, c);
    }
    if (count < 0 || done < count) out += new_part;
    return out;
  }
  std::size_t pos = 0;
  std::int64_t done = 0;
  while (count < 0 || done < count) {
    const std::size_t found = text.find(old_part, pos);
    if (found == std::string_view::npos) break;
    out += text.substr(pos, found - pos);
    out += new_part;
    check_string_size(out.size());
    pos = found + old_part.size();
    ++done;
  }
  out += text.substr(pos);
  return out;
}

namespace {

enum class CaseMapping { kUpper, kLower, kTitle, kFold };

// Python uses Unicode's full case mappings, where one character may become several (SpecialCasing.txt);
// utf8proc has only the one-to-one mappings. These are the unconditional many-character ones of Latin text.
const char* special_case(char32_t c, CaseMapping mapping) {
  switch (mapping) {
    case CaseMapping::kUpper:
      switch (c) {
        case 0x00DF: return "SS";
        case 0x0149: return "\u02BCN";
        case 0x01F0: return "J\u030C";
        case 0xFB00: return "FF";
        case 0xFB01: return "FI";
        case 0xFB02: return "FL";
        case 0xFB03: return "FFI";
        case 0xFB04: return "FFL";
        case 0xFB05:
        case 0xFB06: return "ST";
        default: return nullptr;
      }
    case CaseMapping::kTitle:
      switch (c) {
        case 0x00DF: return "Ss";
        case 0x0149: return "\u02BCN";
        case 0x01F0: return "J\u030C";
        case 0xFB00: return "Ff";
        case 0xFB01: return "Fi";
        case 0xFB02: return "Fl";
        case 0xFB03: return "Ffi";
        case 0xFB04: return "Ffl";
        case 0xFB05:
        case 0xFB06: return "St";
        default: return nullptr;
      }
    case CaseMapping::kLower: return c == 0x0130 ? "i\u0307" : nullptr;
    case CaseMapping::kFold:
      switch (c) {
        case 0x00DF: return "ss";
        case 0x0130: return "i\u0307";
        case 0xFB00: return "ff";
        case 0xFB01: return "fi";
        case 0xFB02: return "fl";
        case 0xFB03: return "ffi";
        case 0xFB04: return "ffl";
        case 0xFB05:
        case 0xFB06: return "st";
        default: return nullptr;
      }
  }
  return nullptr;
}

void append_case_mapped(std::string& out, char32_t c, CaseMapping mapping) {
  if (c >= 0x80) {
    if (const char* special = special_case(c, mapping)) {
      out += special;
      return;
    }
  }
  switch (mapping) {
    case CaseMapping::kUpper: append_utf8(out, to_upper(c)); return;
    case CaseMapping::kTitle: append_utf8(out, to_title(c)); return;
    case CaseMapping::kLower:
    case CaseMapping::kFold: append_utf8(out, to_lower(c)); return;
  }
}

std::string case_map(std::string_view text, CaseMapping mapping) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : decode_utf8(text)) append_case_mapped(out, c, mapping);
  return out;
}

}  // namespace

std::string py_upper(std::string_view text) { return case_map(text, CaseMapping::kUpper); }
std::string py_lower(std::string_view text) { return case_map(text, CaseMapping::kLower); }
std::string py_casefold(std::string_view text) { return case_map(text, CaseMapping::kFold); }
std::string py_swapcase(std::string_view text) {
  std::string out;
  for (char32_t c : decode_utf8(text)) {
    append_case_mapped(out, c,
                       is_upper(c)   ? CaseMapping::kLower
                       : is_lower(c) ? CaseMapping::kUpper
                                     : CaseMapping::kFold);
  }
  return out;
}

std::string py_title(std::string_view text) {
  std::string out;
  bool previous_is_cased = false;
  for (char32_t c : decode_utf8(text)) {
    append_case_mapped(out, c, previous_is_cased ? CaseMapping::kLower : CaseMapping::kTitle);
    previous_is_cased = is_cased(c);
  }
  return out;
}

std::string py_capitalize(std::string_view text) {
  std::string out;
  bool first = true;
  for (char32_t c : decode_utf8(text)) {
    append_case_mapped(out, c, first ? CaseMapping::kTitle : CaseMapping::kLower);
    first = false;
  }
  return out;
}

std::int64_t py_find(std::string_view text, std::string_view part, std::optional<std::int64_t> start,
                     std::optional<std::int64_t> end, bool from_right) {
  const std::u32string haystack = decode_utf8(text);
  const std::u32string needle = decode_utf8(part);
  const auto [begin, stop] = clamp_range(start, end, haystack.size());
  if (begin > stop || stop - begin < needle.size()) return -1;
  const std::u32string_view window = std::u32string_view(haystack).substr(begin, stop - begin);
  const std::size_t found = from_right ? window.rfind(needle) : window.find(needle);
  return found == std::u32string_view::npos ? -1 : static_cast<std::int64_t>(begin + found);
}

std::int64_t py_count(std::string_view text, std::string_view part) {
  if (part.empty()) return static_cast<std::int64_t>(code_point_count(text)) + 1;
  std::int64_t count = 0;
  for (std::size_t pos = text.find(part); pos != std::string_view::npos; pos = text.find(part, pos + part.size())) {
    ++count;
  }
  return count;
}

std::string py_pad(std::string_view text, std::int64_t width, std::string_view fill, int align) {
  const auto length = static_cast<std::int64_t>(code_point_count(text));
  if (width <= length) return std::string(text);
  const std::int64_t margin = width - length;
  charge_string(saturating_product(static_cast<std::size_t>(margin), fill.size()) + text.size());
  std::int64_t left = 0;
  if (align == 0) {
    left = margin / 2 + (margin & width & 1);
  } else if (align > 0) {
    left = margin;
  }
  std::string out;
  for (std::int64_t i = 0; i < left; ++i) out += fill;
  out += text;
  for (std::int64_t i = left; i < margin; ++i) out += fill;
  return out;
}

bool py_is(std::string_view text, CharClass char_class) {
  const std::u32string code_points = decode_utf8(text);
  if (code_points.empty()) return false;
  if (char_class == CharClass::kUpper || char_class == CharClass::kLower) {
    bool any_cased = false;
    for (char32_t c : code_points) {
      if (char_class == CharClass::kUpper ? is_lower(c) : is_upper(c)) return false;
      any_cased = any_cased || is_cased(c);
    }
    return any_cased;
  }
  for (char32_t c : code_points) {
    bool ok = false;
    switch (char_class) {
      case CharClass::kSpace: ok = is_space(c); break;
      case CharClass::kAlpha: ok = is_alpha(c); break;
      case CharClass::kDigit: ok = is_digit(c); break;
      case CharClass::kAlnum: ok = is_alnum(c); break;
      default: break;
    }
    if (!ok) return false;
  }
  return true;
}

std::string py_string_repr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  char escape[16];
  for (char32_t c : decode_utf8(text)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (is_printable(c)) {
      append_utf8(out, c);
    } else {
      const char* format = c <= 0xFF ? "\\x%02x" : c <= 0xFFFF ? "\\u%04x" : "\\U%08x";
      std::snprintf(escape, sizeof(escape), format, static_cast<unsigned>(c));
      out += escape;
    }
  }
  out += quote;
  return out;
}

std::string py_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  std::string out = std::signbit(value) ? "-" : "";
  // The shortest digits that round-trip, in exponent form: "d[.ddd]e±XX".
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), std::fabs(value), std::chars_format::scientific);
  const std::string_view scientific(buffer, static_cast<std::size_t>(result.ptr - buffer));
  const std::size_t e = scientific.find('e');
  std::string digits;
  for (char c : scientific.substr(0, e)) {
    if (c != '.') digits += c;
  }
  const int exponent = std::atoi(std::string(scientific.substr(e + 1)).c_str());
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      const auto int_digits = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() <= int_digits) {
        out += digits + std::string(int_digits - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
      }
    } else {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exponent_text;
}

}  // namespace kiln::tokenizer::jinja
