// Python str methods and formatting on UTF-8 strings, with Python's code-point semantics: what str.strip(),
// str.split(), str.title(), repr() and friends return, so templates calling them render as under Jinja2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer::jinja {

enum class StripSide { kBoth, kLeft, kRight };
// str.strip / lstrip / rstrip: without `chars`, strips Unicode whitespace.
std::string py_strip(std::string_view text, const std::optional<std::string>& chars, StripSide side);
// str.split / rsplit: without `separator`, splits on runs of whitespace and drops empty parts.
std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& separator,
                                  std::int64_t max_split);
std::vector<std::string> py_rsplit(std::string_view text, const std::optional<std::string>& separator,
                                   std::int64_t max_split);
std::vector<std::string> py_splitlines(std::string_view text, bool keep_ends);
// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(std::string_view text, std::string_view old_part, std::string_view new_part, std::int64_t count);
std::string py_upper(std::string_view text);
std::string py_lower(std::string_view text);
std::string py_swapcase(std::string_view text);
std::string py_casefold(std::string_view text);
// str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.
std::string py_title(std::string_view text);
// str.capitalize(): first character title-cased, the rest lower-cased.
std::string py_capitalize(std::string_view text);
// str.find / rfind in code points (-1 when absent), over text[start:end].
std::int64_t py_find(std::string_view text, std::string_view part, std::optional<std::int64_t> start,
                     std::optional<std::int64_t> end, bool from_right);
std::int64_t py_count(std::string_view text, std::string_view part);
// str.center / ljust / rjust with a one-character fill.
std::string py_pad(std::string_view text, std::int64_t width, std::string_view fill, int align);

enum class CharClass { kSpace, kAlpha, kDigit, kAlnum, kUpper, kLower };
// str.isspace() and friends: true when text is non-empty and every character is of the class; isupper/islower
// look only at cased characters and need at least one.
bool py_is(std::string_view text, CharClass char_class);

// repr(str): single quotes unless the text holds ' and no ", with Python's escapes.
std::string py_string_repr(std::string_view text);
// repr(float) and str(float): the shortest round-trip digits, fixed for 1e-4 <= |x| < 1e16 and exponent form
// otherwise ("1.0", "0.1", "1e+16", "1.5e-07", "inf", "nan").
std::string py_float_repr(double value);

}  // namespace kiln::tokenizer::jinja
