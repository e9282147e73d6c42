// The BPE model's word encoding, on the small vocabularies of HF tokenizers'
// own BPE tests: merge ranks, unknown tokens, byte fallback, ignore_merges,
// continuing-subword prefixes.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using testing::bpe_tokenizer_json;
using testing::load_json;
using testing::TempDir;

TEST(BpeModelTest, AppliesMergesByRank) {
  TempDir dir;
  const json vocab = {{"u", 0},     {"n", 1},    {"r", 2},        {"e", 3},         {"l", 4},   {"a", 5},
                      {"t", 6},     {"d", 7},    {"re", 8},       {"at", 9},        {"ed", 10}, {"un", 11},
                      {"ated", 12}, {"rel", 13}, {"related", 14}, {"unrelated", 15}};
  const json merges = {"r e", "a t", "e d", "u n", "at ed", "re l", "rel ated", "un related"};
  const auto tokenizer = load_json(dir, bpe_tokenizer_json(vocab, merges));
  EXPECT_EQ(tokenizer->encode("unrelated", false), std::vector<int32_t>{15});
  EXPECT_EQ(tokenizer->encode("related", false), std::vector<int32_t>{14});
  EXPECT_EQ(tokenizer->encode("dated", false), (std::vector<int32_t>{7, 12}));
}

// Found by tokenizer_json_fuzz: one huge id made the loader allocate a table of that many entries (gigabytes).
TEST(BpeModelTest, RefusesTokenIdsOutOfRange) {
  TempDir dir;
  try {
    load_json(dir, bpe_tokenizer_json({{"a", 0}, {"b", 666666666}}, json::array()));
    ADD_FAILURE() << "a huge id was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 666666666 is outside 0..16777215"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_json(dir, bpe_tokenizer_json({{"a", 0}, {"b", -1}}, json::array())), Error);
}

TEST(BpeModelTest, MergesGivenAsPairs) {
  TempDir dir;
  const json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {"abb", 3}};
  const json merges = json::array({json::array({"a", "b"}), json::array({"ab", "b"})});
  const auto tokenizer = load_json(dir, bpe_tokenizer_json(vocab, merges));
  EXPECT_EQ(tokenizer->encode("abbab", false), (std::vector<int32_t>{3, 2}));
}

TEST(BpeModelTest, LowerRankWinsOverLeftmost) {
  // "bc" has the better rank, so "abc" becomes a + bc although "ab" is leftmost.
  TempDir dir;
  const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}};
  const auto tokenizer = load_json(dir, bpe_tokenizer_json(vocab, {"b c", "a b"}));
  EXPECT_EQ(tokenizer->encode("abc", false), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(tokenizer->encode("abab", false), (std::vector<int32_t>{3, 3}));
}

TEST(BpeModelTest, UnknownCharactersUseUnkTokenFusedOrNot) {
  TempDir dir;
  const json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}};
  const auto unfused = load_json(dir, bpe_tokenizer_json(vocab, json::array(), {}, {{"unk_token", "<unk>"}}));
  EXPECT_EQ(unfused->encode("accb", false), (std::vector<int32_t>{1, 0, 0, 2}));
  const auto fused =
      load_json(dir, bpe_tokenizer_json(vocab, json::array(), {}, {{"unk_token", "<unk>"}, {"fuse_unk", true}}));
  EXPECT_EQ(fused->encode("accb", false), (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(fused->encode("cc", false), (std::vector<int32_t>{0}));
}

TEST(BpeModelTest, UnknownCharactersWithoutUnkTokenVanish) {
  TempDir dir;
  const auto tokenizer = load_json(dir, bpe_tokenizer_json({{"a", 0}}, json::array()));
  EXPECT_EQ(tokenizer->encode("xax", false), std::vector<int32_t>{0});
}

TEST(BpeModelTest, ByteFallbackBeforeUnk) {
  TempDir dir;
  const json vocab = {{"<unk>", 0}, {"<0x61>", 1}, {"<0x0A>", 2}, {"<0xC3>", 3}, {"<0xA9>", 4}};
  const auto tokenizer =
      load_json(dir, bpe_tokenizer_json(vocab, json::array(), {}, {{"unk_token", "<unk>"}, {"byte_fallback", true}}));
  EXPECT_EQ(tokenizer->encode("a", false), std::vector<int32_t>{1});
  EXPECT_EQ(tokenizer->encode("\n", false), std::vector<int32_t>{2});
  EXPECT_EQ(tokenizer->encode("c", false), std::vector<int32_t>{0});  // <0x63> is missing
  EXPECT_EQ(tokenizer->encode("\xC3\xA9", false), (std::vector<int32_t>{3, 4}));
}

TEST(BpeModelTest, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  TempDir dir;
  const json vocab = {{".:.:", 0}, {"Ġbelirtilen", 1}, {".", 2},          {":", 3},      {"bel", 4},   {"irtilen", 5},
                      {"Ġ", 6},    {".:", 7},          {"belirtilen", 8}, {".:.", 9},    {"be", 10},   {"l", 11},
                      {"ir", 12},  {"ti", 13},         {"en", 14},        {"irtil", 15}, {"irti", 16}, {"i", 17},
                      {"r", 18},   {"t", 19},          {"b", 20},         {"e", 21},     {"n", 22}};
  const json merges = {". :", "b e", "be l", "i r", "t i", "ir ti", "e n", "irti l"};
  const auto ignoring = load_json(dir, bpe_tokenizer_json(vocab, merges, {}, {{"ignore_merges", true}}));
  EXPECT_EQ(ignoring->encode(".:.:", false), std::vector<int32_t>{0});
  EXPECT_EQ(ignoring->encode("Ġbelirtilen", false), std::vector<int32_t>{1});
  const auto merging = load_json(dir, bpe_tokenizer_json(vocab, merges, {}, {{"ignore_merges", false}}));
  EXPECT_EQ(merging->encode(".:.:", false), (std::vector<int32_t>{7, 7}));
  EXPECT_EQ(merging->encode("Ġbelirtilen", false), (std::vector<int32_t>{6, 4, 15, 14}));
}

TEST(BpeModelTest, ContinuingSubwordPrefix) {
  TempDir dir;
  const json vocab = {{"a", 0}, {"##b", 1}, {"##c", 2}, {"ab", 3}, {"abc", 4}};
  const auto tokenizer =
      load_json(dir, bpe_tokenizer_json(vocab, {"a ##b", "ab ##c"}, {}, {{"continuing_subword_prefix", "##"}}));
  EXPECT_EQ(tokenizer->encode("ab", false), std::vector<int32_t>{3});
  EXPECT_EQ(tokenizer->encode("abc", false), std::vector<int32_t>{4});
}

TEST(BpeModelTest, EndOfWordSuffix) {
  TempDir dir;
  const json vocab = {{"a", 0}, {"b</w>", 1}, {"ab</w>", 2}, {"b", 3}};
  const auto tokenizer = load_json(dir, bpe_tokenizer_json(vocab, {"a b</w>"}, {}, {{"end_of_word_suffix", "</w>"}}));
  EXPECT_EQ(tokenizer->encode("ab", false), std::vector<int32_t>{2});
  EXPECT_EQ(tokenizer->encode("bb", false), (std::vector<int32_t>{3, 1}));
}

TEST(BpeModelTest, LongWordsMergeCompletely) {
  // Pairs merge level by level: 2^k repeats of "a" end as one token.
  TempDir dir;
  json vocab = {{"a", 0}};
  json merges = json::array();
  std::string token = "a";
  for (int level = 1; level <= 8; ++level) {
    merges.push_back(token + " " + token);
    token += token;
    vocab[token] = level;
  }
  const auto tokenizer = load_json(dir, bpe_tokenizer_json(vocab, merges));
  EXPECT_EQ(tokenizer->encode(std::string(256, 'a'), false), std::vector<int32_t>{8});
  EXPECT_EQ(tokenizer->encode(std::string(300, 'a'), false), (std::vector<int32_t>{8, 5, 3, 2}));
}

}  // namespace
}  // namespace kiln::tokenizer
