// Code-point level helpers for the Jinja engine: templates operate on Python str (code points), while kiln
// stores text as UTF-8, so every index, length and character class goes through these.
#pragma once

#include <string>
#include <string_view>

namespace kiln::tokenizer::jinja {

// Decodes UTF-8; an invalid byte decodes as itself (U+0080..U+00FF) so that no input is lost.
std::u32string decode_utf8(std::string_view text);
void append_utf8(std::string& out, char32_t code_point);
std::string encode_utf8(std::u32string_view text);
// Number of code points, what Python's len(str) returns.
std::size_t code_point_count(std::string_view text);
bool is_ascii(std::string_view text);

// Character classes with Python's str semantics.
bool is_space(char32_t c);      // str.isspace
bool is_printable(char32_t c);  // str.isprintable (decides escaping in repr)
bool is_alpha(char32_t c);      // str.isalpha
bool is_digit(char32_t c);      // str.isdigit
bool is_alnum(char32_t c);      // str.isalnum
bool is_cased(char32_t c);      // has an upper or lower case form
bool is_upper(char32_t c);
bool is_lower(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);

}  // namespace kiln::tokenizer::jinja
