// Normalizers of tokenizer.json.
#include "tokenizer/normalizers.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::tokenizer {
namespace {

using nlohmann::json;

std::string normalize(const json& config, const std::string& text) {
  return make_normalizer(JsonNode(config, "test.json"))->normalize(text);
}

TEST(NormalizersTest, UnicodeForms) {
  EXPECT_EQ(normalize(json{{"type", "NFC"}}, "e\u0301"), "\u00e9");
  EXPECT_EQ(normalize(json{{"type", "NFD"}}, "\u00e9"), "e\u0301");
  EXPECT_EQ(normalize(json{{"type", "NFKC"}}, "\uFB01 x\u00B2"), "fi x2");
  EXPECT_EQ(normalize(json{{"type", "NFKD"}}, "\u00C5"), "A\u030A");
  EXPECT_EQ(normalize(json{{"type", "NFC"}}, ""), "");
}

TEST(NormalizersTest, Lowercase) {
  EXPECT_EQ(normalize(json{{"type", "Lowercase"}}, "HeLLo ÀÉ ΣΑ"), "hello àé σα");
  EXPECT_EQ(normalize(json{{"type", "Lowercase"}}, "\u0130"), "i\u0307");
}

TEST(NormalizersTest, PrependOnlyToNonEmptyText) {
  const json config = {{"type", "Prepend"}, {"prepend", "▁"}};
  EXPECT_EQ(normalize(config, "Hey"), "▁Hey");
  EXPECT_EQ(normalize(config, ""), "");
}

TEST(NormalizersTest, ReplaceStringAndRegex) {
  EXPECT_EQ(normalize(json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}, "a b  c"), "a▁b▁▁c");
  EXPECT_EQ(normalize(json{{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                      "This     is   a         test"),
            "This is a test");
  EXPECT_EQ(
      normalize(json{{"type", "Replace"}, {"pattern", {{"Regex", "(l)(e)"}}}, {"content", "$1 $2"}}, "le travail"),
      "l e travail");
}

TEST(NormalizersTest, Strip) {
  EXPECT_EQ(normalize(json{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, " \t hi \u3000"), "hi");
  EXPECT_EQ(normalize(json{{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  hi  "), "  hi");
  EXPECT_EQ(normalize(json{{"type", "Strip"}}, "   "), "");
}

TEST(NormalizersTest, SequenceLikeLlama2) {
  const json config = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", "▁"}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  EXPECT_EQ(normalize(config, "Hello world"), "▁Hello▁world");
}

TEST(NormalizersTest, ByteLevel) { EXPECT_EQ(normalize(json{{"type", "ByteLevel"}}, "a é"), "aĠÃ©"); }

}  // namespace
}  // namespace kiln::tokenizer
