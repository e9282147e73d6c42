// UTF-8 helpers and Unicode classes.
#include "tokenizer/unicode_text.h"

#include <gtest/gtest.h>

namespace kiln::tokenizer {
namespace {

const std::string kFffd(kReplacementCharacter);

TEST(UnicodeTextTest, ValidatesStrictly) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("日本 😀 é"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE6\x97"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(UnicodeTextTest, LossyRepairReplacesMaximalInvalidSubsequences) {
  EXPECT_EQ(to_valid_utf8("ok 日本"), "ok 日本");
  EXPECT_EQ(to_valid_utf8("a\xF0\x9F\x98"), "a" + kFffd);                  // one truncated sequence
  EXPECT_EQ(to_valid_utf8("\xC0\x80"), kFffd + kFffd);                     // invalid lead, lone continuation
  EXPECT_EQ(to_valid_utf8("\xE0\x80\x80"), kFffd + kFffd + kFffd);         // overlong: each byte
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80x"), kFffd + kFffd + kFffd + "x");  // surrogate: each byte
  EXPECT_EQ(to_valid_utf8("\xE6\x97z\xE6\x97\xA5"), kFffd + "z日");
}

TEST(UnicodeTextTest, CodePoints) {
  std::size_t pos = 0;
  const std::string text = "a\u00e9\u65e5\U0001F600";
  EXPECT_EQ(next_code_point(text, pos), U'a');
  EXPECT_EQ(next_code_point(text, pos), U'\u00e9');
  EXPECT_EQ(next_code_point(text, pos), U'\u65e5');
  EXPECT_EQ(next_code_point(text, pos), U'\U0001F600');
  EXPECT_EQ(pos, text.size());
  EXPECT_EQ(last_code_point(text), U'\U0001F600');
  std::string out;
  append_utf8(out, U'\U0001F600');
  EXPECT_EQ(out, "\U0001F600");
}

TEST(UnicodeTextTest, CharacterClasses) {
  EXPECT_TRUE(is_whitespace(U' '));
  EXPECT_TRUE(is_whitespace(U'\u3000'));
  EXPECT_TRUE(is_whitespace(U'\u0085'));
  EXPECT_FALSE(is_whitespace(U'\u200b'));  // zero width space is not White_Space
  EXPECT_TRUE(is_numeric(U'7'));
  EXPECT_TRUE(is_numeric(U'\u00b2'));
  EXPECT_TRUE(is_numeric(U'\u2167'));  // Roman numeral eight
  EXPECT_FALSE(is_numeric(U'x'));
  EXPECT_TRUE(is_punctuation(U'\uff0c'));  // fullwidth comma
  EXPECT_FALSE(is_punctuation(U'$'));
  EXPECT_TRUE(is_ascii_punctuation(U'$'));
  EXPECT_TRUE(is_word_character(U'_'));
  EXPECT_TRUE(is_word_character(U'\u0330'));  // combining mark
  EXPECT_TRUE(is_word_character(U'\u65e5'));
  EXPECT_FALSE(is_word_character(U'-'));
}

}  // namespace
}  // namespace kiln::tokenizer
