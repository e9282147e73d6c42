// Pre-tokenizers on the examples of HF tokenizers' documentation and tests.
#include "tokenizer/pre_tokenizers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using Words = std::vector<std::string>;

Words pre_tokenize(const json& config, const std::vector<PreToken>& input) {
  const auto pre_tokenizer = make_pre_tokenizer(JsonNode(config, "test.json"));
  std::vector<PreToken> pieces = input;
  pre_tokenizer->pre_tokenize(pieces);
  Words words;
  for (const PreToken& piece : pieces) words.push_back(piece.text);
  return words;
}

Words pre_tokenize(const json& config, const std::string& text) { return pre_tokenize(config, {{text, true}}); }

json split(const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
}

TEST(PreTokenizersTest, SplitBehaviors) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split("Removed"), text), (Words{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split("Isolated"), text), (Words{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split("MergedWithPrevious"), text), (Words{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split("MergedWithNext"), text), (Words{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split("Contiguous"), text), (Words{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pre_tokenize(split("Removed", /*invert=*/true), text), (Words{"-", "-", "-"}));
}

TEST(PreTokenizersTest, SplitRegexLikeLlama3) {
  const json config = {
      {"type", "Split"},
      {"pattern",
       {{"Regex",
         R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
      {"behavior", "Isolated"},
      {"invert", false}};
  EXPECT_EQ(pre_tokenize(config, "I'M here  12345 times!!\n\n x"),
            (Words{"I", "'M", " here", " ", " ", "123", "45", " times", "!!\n\n", " x"}));
  EXPECT_EQ(pre_tokenize(config, "line1\rline2\r\rline3"),
            (Words{"line", "1", "\r", "line", "2", "\r\r", "line", "3"}));
}

TEST(PreTokenizersTest, ByteLevelWithGpt2Regex) {
  const json config = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(config, "Hello my friend, how is your day going?"),
            (Words{"ĠHello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"}));
  EXPECT_EQ(pre_tokenize(config, "é\n"), (Words{"ĠÃ©", "Ċ"}));
  const json no_regex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(pre_tokenize(no_regex, "a b"), (Words{"aĠb"}));
}

TEST(PreTokenizersTest, MetaspaceReplacesSpacesAndSplits) {
  const json always = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(always, "Hey friend!"), (Words{"▁Hey", "▁friend!"}));
  EXPECT_EQ(pre_tokenize(always, "Hey   friend!"), (Words{"▁Hey", "▁", "▁", "▁friend!"}));
  const json first = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", false}};
  // Only the piece at the start of the input gets the prefix.
  EXPECT_EQ(pre_tokenize(first, {{" Hey ", true}, {"how", false}}), (Words{"▁Hey▁", "how"}));
  EXPECT_EQ(pre_tokenize(first, {{"Hey my friend ", true}, {"how▁are you", false}}),
            (Words{"▁Hey▁my▁friend▁", "how▁are▁you"}));
  const json never = {{"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", false}};
  EXPECT_EQ(pre_tokenize(never, "Hey friend"), (Words{"Hey", "▁friend"}));
}

TEST(PreTokenizersTest, Digits) {
  EXPECT_EQ(pre_tokenize(json{{"type", "Digits"}, {"individual_digits", true}}, "Hey 123 friend!"),
            (Words{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Digits"}, {"individual_digits", false}}, "Hey 123 friend!"),
            (Words{"Hey ", "123", " friend!"}));
}

TEST(PreTokenizersTest, PunctuationAndWhitespace) {
  EXPECT_EQ(pre_tokenize(json{{"type", "Punctuation"}}, "Hey friend!     How are you?!?"),
            (Words{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Whitespace"}}, "How are you doing?"),
            (Words{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Whitespace"}}, "Hey man!"), (Words{"Hey", "man", "!"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Whitespace"}}, "\n"), Words{});
  EXPECT_EQ(pre_tokenize(json{{"type", "WhitespaceSplit"}}, "Hey man!"), (Words{"Hey", "man!"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "BertPreTokenizer"}}, "Hey friend!  How are you?!?"),
            (Words{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
}

TEST(PreTokenizersTest, SequenceAppliesEachInTurn) {
  const json config = {
      {"type", "Sequence"},
      {"pretokenizers", {{{"type", "WhitespaceSplit"}}, {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_EQ(pre_tokenize(config, "ab12 c"), (Words{"ab", "1", "2", "c"}));
}

}  // namespace
}  // namespace kiln::tokenizer
