#include "tokenizer/byte_level_alphabet.h"

#include <array>

#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

// Printable Latin-1 bytes stand for themselves; the others (controls, space,
// 0x7F-0xA0, 0xAD) take the code points from U+0100 upwards, in byte order.
struct Alphabet {
  std::array<char32_t, 256> char_of_byte{};
  std::array<std::string, 256> utf8_of_byte;
  static constexpr char32_t kMaxChar = 0x100 + 68;
  std::array<int16_t, kMaxChar> byte_of_char{};

  Alphabet() {
    byte_of_char.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      const char32_t c = printable ? static_cast<char32_t>(b) : next_extra++;
      char_of_byte[b] = c;
      append_utf8(utf8_of_byte[b], c);
      byte_of_char[c] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

std::string_view byte_level_char(uint8_t byte) { return alphabet().utf8_of_byte[byte]; }

std::optional<uint8_t> byte_level_byte(char32_t c) {
  if (c >= Alphabet::kMaxChar) return std::nullopt;
  const int16_t b = alphabet().byte_of_char[c];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string to_byte_level_chars(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char byte : bytes) out += a.utf8_of_byte[static_cast<uint8_t>(byte)];
  return out;
}

}  // namespace kiln::tokenizer
