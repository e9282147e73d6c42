// UTF-8 helpers the tokenizer components share.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::tokenizer {

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for invalid leads).
std::size_t utf8_sequence_length(unsigned char lead);
// Whether `text` is complete, valid UTF-8.
bool is_valid_utf8(std::string_view text);
// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t code_point);

}  // namespace kiln::tokenizer
