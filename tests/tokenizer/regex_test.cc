// The PCRE2 wrapper: Unicode classes, Oniguruma's iteration, replacement groups.
#include "tokenizer/regex.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace kiln::tokenizer {
namespace {

std::vector<std::string> matches(const Regex& regex, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& m : regex.find_all(text)) out.push_back(text.substr(m.start, m.end - m.start));
  return out;
}

TEST(RegexTest, UnicodePropertiesAndCaseFolding) {
  const Regex words(R"(\p{L}+|\p{N}+)");
  EXPECT_EQ(matches(words, "héllo 日本 42x"), (std::vector<std::string>{"héllo", "日本", "42", "x"}));
  const Regex contractions(R"((?i:'s|'t))");
  EXPECT_EQ(matches(contractions, "it's IT'S 'T"), (std::vector<std::string>{"'s", "'S", "'T"}));
  const Regex spaces(R"(\s+)");
  EXPECT_EQ(matches(spaces, "a\u3000\u00a0b"), (std::vector<std::string>{"\u3000\u00a0"}));
}

TEST(RegexTest, ClassEscapesMeanWhatTheyMeanInOniguruma) {
  // \s is White_Space (U+0085 included), \w is letters, marks, decimal digits
  // and connector punctuation (not "²"), \h is a hex digit (Ruby syntax).
  EXPECT_EQ(matches(Regex(R"(\s+)"), "a\u0085\u2028b"), (std::vector<std::string>{"\u0085\u2028"}));
  EXPECT_EQ(matches(Regex(R"(\S+)"), "a\u0085b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(matches(Regex(R"([^\s\p{L}]+)"), "x\u0085!?y"), (std::vector<std::string>{"!?"}));
  EXPECT_EQ(matches(Regex(R"(\w+)"), "e\u0301_1\u00b2"), (std::vector<std::string>{"e\u0301_1"}));
  EXPECT_EQ(matches(Regex(R"(\W+)"), "a\u00b2-b"), (std::vector<std::string>{"\u00b2-"}));
  EXPECT_EQ(matches(Regex(R"(\h+)"), "xx0fAz"), (std::vector<std::string>{"0fA"}));
  EXPECT_EQ(matches(Regex(R"([\]\s]+)"), "a] ]b"), (std::vector<std::string>{"] ]"}));
  EXPECT_EQ(matches(Regex(R"([[:digit:]\s]+)"), "a1 2b"), (std::vector<std::string>{"1 2"}));
}

TEST(RegexTest, LookAheadKeepsTheLastSpaceForTheNextWord) {
  const Regex regex(R"(\s+(?!\S)|\s+)");
  EXPECT_EQ(matches(regex, "a   b"), (std::vector<std::string>{"  ", " "}));
}

TEST(RegexTest, EmptyMatchesDoNotLoop) {
  // As the onig crate iterates: an empty match where the previous match ended
  // is skipped, so nothing is reported between "xx" and "b".
  const Regex regex("x*");
  EXPECT_EQ(matches(regex, "axxb"), (std::vector<std::string>{"", "xx", ""}));
}

TEST(RegexTest, ReplaceExpandsGroups) {
  const Regex regex("(?<first>l)(e)");
  EXPECT_EQ(regex.replace_all("le travail", "$1 $2", true), "l e travail");
  EXPECT_EQ(regex.replace_all("le", "${first}-${2}$$", true), "l-e$");
  EXPECT_EQ(regex.replace_all("le", "$9", true), "");
  EXPECT_EQ(regex.replace_all("le", "$1", false), "$1");
}

TEST(RegexTest, InvalidPatternNamesTheProblem) {
  try {
    Regex regex("(unclosed");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(unclosed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing closing parenthesis"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::tokenizer
