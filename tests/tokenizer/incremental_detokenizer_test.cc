// Streaming detokenization: text comes out as soon as it is final, never a
// half character, and all of it together is what decode gives.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/unicode_text.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using testing::added_token;
using testing::bpe_tokenizer_json;
using testing::fixture_tokenizer;
using testing::load_json;
using testing::streamed;
using testing::TempDir;

std::vector<std::string> pushes(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer detokenizer(tokenizer, skip);
  std::vector<std::string> out;
  for (const int32_t id : ids) out.push_back(detokenizer.push(id));
  out.push_back(detokenizer.finish());
  return out;
}

TEST(IncrementalDetokenizerTest, EmitsWordsAsTheyArrive) {
  const Tokenizer& llama3 = fixture_tokenizer("llama3");
  const auto ids = llama3.encode("Hello world, again", false);
  const auto out = pushes(llama3, ids, false);
  EXPECT_EQ(out.front(), "Hello");
  EXPECT_EQ(out[1], " world");
  EXPECT_EQ(out.back(), "");
}

TEST(IncrementalDetokenizerTest, NeverSplitsACharacter) {
  for (const char* name : {"llama2", "llama3", "qwen3"}) {
    const Tokenizer& tokenizer = fixture_tokenizer(name);
    const std::string text = "emoji 😀🎉👍🏽🤖 日本語のテキスト 叫 ĳ ∑ᵢ xᵢ²";
    const auto ids = tokenizer.encode(text, false);
    std::string joined;
    for (const std::string& piece : pushes(tokenizer, ids, false)) {
      EXPECT_TRUE(is_valid_utf8(piece)) << name;
      EXPECT_EQ(piece.find(kReplacementCharacter), std::string::npos) << name << ": " << piece;
      joined += piece;
    }
    EXPECT_EQ(joined, tokenizer.decode(ids, false)) << name;
  }
}

TEST(IncrementalDetokenizerTest, HoldsByteFallbackRunsUntilTheyEnd) {
  const Tokenizer& llama2 = fixture_tokenizer("llama2");
  const auto emoji = llama2.encode("🤖", false);  // "▁" then four byte tokens
  ASSERT_EQ(emoji.size(), 5u);
  IncrementalDetokenizer detokenizer(llama2, false);
  std::string text;
  for (const int32_t id : emoji) text += detokenizer.push(id);
  // A further byte token could still turn the run into U+FFFDs, so the emoji waits.
  EXPECT_EQ(text.find("🤖"), std::string::npos);
  text += detokenizer.push(*llama2.token_to_id("▁world"));
  EXPECT_EQ(text, "🤖 world");
  EXPECT_EQ(detokenizer.finish(), "");
}

TEST(IncrementalDetokenizerTest, InvalidByteRunMatchesDecode) {
  const Tokenizer& llama2 = fixture_tokenizer("llama2");
  const int32_t a = *llama2.token_to_id("<0x41>");
  const int32_t e5 = *llama2.token_to_id("<0xE5>");
  const int32_t hello = *llama2.token_to_id("▁Hello");
  const std::vector<int32_t> ids = {hello, a, e5, hello, e5};
  // The "A" byte is lost with the invalid run it belongs to: one U+FFFD per byte.
  EXPECT_EQ(llama2.decode(ids, false), "Hello�� Hello�");
  EXPECT_EQ(streamed(llama2, ids, false), llama2.decode(ids, false));
}

TEST(IncrementalDetokenizerTest, SkippedSpecialTokensDoNotStripTheNextSpace) {
  const Tokenizer& llama2 = fixture_tokenizer("llama2");
  const int32_t hello = *llama2.token_to_id("▁Hello");
  const int32_t world = *llama2.token_to_id("▁world");
  const std::vector<int32_t> ids = {1, hello, 2, 1, world, 2};
  EXPECT_EQ(streamed(llama2, ids, true), "Hello world");
  EXPECT_EQ(streamed(llama2, ids, false), llama2.decode(ids, false));
}

TEST(IncrementalDetokenizerTest, IgnoresIdsOutsideTheVocabulary) {
  const Tokenizer& qwen3 = fixture_tokenizer("qwen3");
  const auto ids = qwen3.encode("Hello world", false);
  const std::vector<int32_t> with_unknown = {ids[0], 151900, -5, ids[1]};
  EXPECT_EQ(streamed(qwen3, with_unknown, false), "Hello world");
  EXPECT_EQ(qwen3.decode(with_unknown, false), "Hello world");
}

// Random id sequences, weighted towards the ids that make streaming hard:
// byte tokens, special tokens, lone spaces, pieces of multi-byte characters.
TEST(IncrementalDetokenizerTest, RandomSequencesEqualDecode) {
  std::mt19937 rng(1234);
  for (const char* name : {"llama2", "llama3", "qwen3", "gpt2"}) {
    const Tokenizer& tokenizer = fixture_tokenizer(name);
    const auto vocab_size = static_cast<int32_t>(tokenizer.vocab_size());
    std::vector<int32_t> tricky;
    for (int32_t id = 0; id < std::min(vocab_size, 600); ++id) tricky.push_back(id);
    for (int32_t id = std::max(0, vocab_size - 300); id < vocab_size; ++id) tricky.push_back(id);
    for (const char* text : {" ", "  ", "😀", "叫", "é", "\n", "日本語"}) {
      for (const int32_t id : tokenizer.encode(text, false)) tricky.push_back(id);
    }
    std::uniform_int_distribution<int32_t> any_id(0, vocab_size - 1);
    std::uniform_int_distribution<std::size_t> any_tricky(0, tricky.size() - 1);
    std::uniform_int_distribution<int> length(1, 30);
    for (int round = 0; round < 300; ++round) {
      std::vector<int32_t> ids(static_cast<std::size_t>(length(rng)));
      for (int32_t& id : ids) id = rng() % 3 == 0 ? any_id(rng) : tricky[any_tricky(rng)];
      for (const bool skip : {false, true}) {
        ASSERT_EQ(streamed(tokenizer, ids, skip), tokenizer.decode(ids, skip))
            << name << " ids=" << ::testing::PrintToString(ids) << " skip=" << skip;
      }
    }
  }
}

// A SentencePiece-style tokenizer.json whose Metaspace decoder drops the "▁"
// of the first token only: a window must never start on a token that is not
// first in the full decode and still be decoded as such.
TEST(IncrementalDetokenizerTest, MetaspaceDecoderRandomSequencesEqualDecode) {
  TempDir dir;
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"▁", 3}, {"▁▁", 4}, {"▁a", 5}, {"b", 6}, {"a▁b", 7}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 8 + b;
  }
  const json metaspace = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  const json decoder = {{"type", "Sequence"},
                        {"decoders", {metaspace, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  const auto tokenizer = load_json(
      dir,
      bpe_tokenizer_json(vocab, json::array(),
                         {{"pre_tokenizer", metaspace},
                          {"decoder", decoder},
                          {"added_tokens",
                           {added_token(0, "<unk>", true), added_token(1, "<s>", true), added_token(2, "</s>", true)}}},
                         {{"unk_token", "<unk>"}, {"byte_fallback", true}}));
  std::mt19937 rng(99);
  const std::vector<int32_t> pool = {0, 1,        2,        3,        4,        5,        6,
                                     7, 8 + 0x41, 8 + 0xE5, 8 + 0x8F, 8 + 0xAB, 8 + 0xC3, 8 + 0xA9};
  for (int round = 0; round < 500; ++round) {
    std::vector<int32_t> ids(1 + rng() % 12);
    for (int32_t& id : ids) id = pool[rng() % pool.size()];
    for (const bool skip : {false, true}) {
      ASSERT_EQ(streamed(*tokenizer, ids, skip), tokenizer->decode(ids, skip))
          << "ids=" << ::testing::PrintToString(ids) << " skip=" << skip;
    }
  }
}

}  // namespace
}  // namespace kiln::tokenizer
