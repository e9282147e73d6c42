// Decoders of tokenizer.json, on the cases of HF tokenizers' decoder tests.
#include "tokenizer/decoders.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using Tokens = std::vector<std::string>;

Tokens decode_chain(const json& config, Tokens tokens) {
  make_decoder(JsonNode(config, "test.json"))->decode_chain(tokens);
  return tokens;
}

TEST(DecodersTest, ByteFallback) {
  const json config = {{"type", "ByteFallback"}};
  EXPECT_EQ(decode_chain(config, {"Hey", "friend!"}), (Tokens{"Hey", "friend!"}));
  EXPECT_EQ(decode_chain(config, {"<0x61>"}), (Tokens{"a"}));
  EXPECT_EQ(decode_chain(config, {"<0xE5>"}), (Tokens{"�"}));
  EXPECT_EQ(decode_chain(config, {"<0xE5>", "<0x8f>"}), (Tokens{"�", "�"}));
  EXPECT_EQ(decode_chain(config, {"<0xE5>", "<0x8f>", "<0xab>"}), (Tokens{"叫"}));
  EXPECT_EQ(decode_chain(config, {"<0xE5>", "<0x8f>", "<0xab>", "a"}), (Tokens{"叫", "a"}));
  EXPECT_EQ(decode_chain(config, {"<0xE5>", "<0x8f>", "a"}), (Tokens{"�", "�", "a"}));
}

TEST(DecodersTest, Strip) {
  EXPECT_EQ(
      decode_chain(json{{"type", "Strip"}, {"content", "H"}, {"start", 1}, {"stop", 0}}, {"Hey", " friend!", "HHH"}),
      (Tokens{"ey", " friend!", "HH"}));
  EXPECT_EQ(decode_chain(json{{"type", "Strip"}, {"content", "y"}, {"start", 0}, {"stop", 1}}, {"Hey", " friend!"}),
            (Tokens{"He", " friend!"}));
}

TEST(DecodersTest, FuseAndReplace) {
  EXPECT_EQ(decode_chain(json{{"type", "Fuse"}}, {"Hey", " friend", "!"}), (Tokens{"Hey friend!"}));
  EXPECT_EQ(
      decode_chain(json{{"type", "Replace"}, {"pattern", {{"String", "_"}}}, {"content", " "}}, {"hello", "_hello"}),
      (Tokens{"hello", " hello"}));
  EXPECT_EQ(
      decode_chain(json{{"type", "Replace"}, {"pattern", {{"Regex", "(l)(e)"}}}, {"content", "$1 $2"}}, {"le", "test"}),
      (Tokens{"l e", "test"}));
}

TEST(DecodersTest, Metaspace) {
  const json config = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}};
  EXPECT_EQ(decode_chain(config, {"▁Hey", "▁friend!"}), (Tokens{"Hey", " friend!"}));
  const json never = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}};
  EXPECT_EQ(decode_chain(never, {"▁Hey", "▁friend!"}), (Tokens{" Hey", " friend!"}));
}

TEST(DecodersTest, ByteLevel) {
  const json config = {{"type", "ByteLevel"}};
  EXPECT_EQ(decode_chain(config, {"Hello", "Ġmy", "Ġfriend", ","}), (Tokens{"Hello my friend,"}));
  // A token outside the byte alphabet keeps its own bytes; broken UTF-8 becomes U+FFFD.
  EXPECT_EQ(decode_chain(config, {"<|im_start|>", "日本", "Ġ", "æĹ"}), (Tokens{"<|im_start|>日本 \xEF\xBF\xBD"}));
}

TEST(DecodersTest, SequenceLikeLlama2) {
  const json config = {{"type", "Sequence"},
                       {"decoders",
                        {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                         {{"type", "ByteFallback"}},
                         {{"type", "Fuse"}},
                         {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  EXPECT_EQ(decode_chain(config, {"▁Hello", "▁", "<0xE5>", "<0x8F>", "<0xAB>", "▁world"}), (Tokens{"Hello 叫 world"}));
}

}  // namespace
}  // namespace kiln::tokenizer
