// UTF-8 helpers the tokenizer components share: validation, lossy repair,
// code point iteration, the Unicode character classes HF tokenizers tests with
// (Rust's char methods and regex classes), case mapping and normalization forms.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::tokenizer {

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for invalid leads).
std::size_t utf8_sequence_length(unsigned char lead);
// Whether `text` is complete, valid UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF, as Rust's str and PCRE2 require).
bool is_valid_utf8(std::string_view text);
// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t code_point);

// Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes one
// U+FFFD, the rest is copied. Valid input comes back unchanged.
std::string to_valid_utf8(std::string_view bytes);

// Decodes the code point starting at text[pos] of valid UTF-8 and moves pos past it.
char32_t next_code_point(std::string_view text, std::size_t& pos);
// The code point starting at text[pos] of valid UTF-8.
inline char32_t code_point_at(std::string_view text, std::size_t pos) { return next_code_point(text, pos); }
// The first code point of non-empty valid UTF-8.
inline char32_t first_code_point(std::string_view text) { return code_point_at(text, 0); }
// The last code point of non-empty valid UTF-8.
char32_t last_code_point(std::string_view text);

// U+FFFD REPLACEMENT CHARACTER, what lossy decoding produces for broken bytes.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Unicode White_Space (Rust char::is_whitespace, regex \s).
bool is_whitespace(char32_t c);
// General category N* (Rust char::is_numeric).
bool is_numeric(char32_t c);
// General category P* (Rust char::is_punctuation).
bool is_punctuation(char32_t c);
// ASCII punctuation and symbols (Rust char::is_ascii_punctuation).
bool is_ascii_punctuation(char32_t c);
// Unicode regex \w: letters, marks, decimal digits, letter numbers, connector
// punctuation and the joiners (Rust regex's Alphabetic | M | Nd | Pc | Join_Control).
bool is_word_character(char32_t c);

// Per-character full lowercase mapping (Rust char::to_lowercase): simple
// mappings plus U+0130 -> "i\u0307".
std::string to_lowercase(std::string_view text);

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };
// Unicode normalization of valid UTF-8 (utf8proc).
std::string normalize_unicode(std::string_view text, NormalizationForm form);

}  // namespace kiln::tokenizer
