// GPT-2's reversible mapping between bytes and printable characters, which
// byte-level BPE vocabularies are written in ("Ġ" is the space byte 0x20).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::tokenizer {

// The UTF-8 of the character that stands for `byte`.
std::string_view byte_level_char(uint8_t byte);
// The byte a character stands for, if it is one of the 256 alphabet characters.
std::optional<uint8_t> byte_level_byte(char32_t c);
// Every byte of `bytes` as its alphabet character.
std::string to_byte_level_chars(std::string_view bytes);

}  // namespace kiln::tokenizer
