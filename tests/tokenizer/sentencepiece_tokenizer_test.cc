// tokenizer.model checkpoints: a small SentencePiece BPE model with byte
// fallback is trained at test time with libsentencepiece's trainer.
#include "tokenizer/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using testing::streamed;
using testing::TempDir;
using testing::write_file;

class SentencePieceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string corpus;
    const std::vector<std::string> words = {"hello", "world", "the", "quick", "brown", "fox", "jumps",
                                            "over",  "lazy",  "dog", "kiln",  "日本",  "語",  "café"};
    for (std::size_t line = 0; line < 300; ++line) {
      for (std::size_t w = 0; w < 10; ++w) corpus += words[(line * 7 + w * 3 + line / 5) % words.size()] + " ";
      corpus += "\n";
    }
    write_file(*dir_ / "corpus.txt", corpus);
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + (*dir_ / "corpus.txt").string() + " --model_prefix=" + (*dir_ / "tokenizer").string() +
        " --vocab_size=300 --model_type=bpe --byte_fallback=true --character_coverage=1.0 --minloglevel=2");
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::unique_ptr<Tokenizer> load() { return Tokenizer::load(*dir_ / "tokenizer.model"); }

  static TempDir* dir_;
};

TempDir* SentencePieceTokenizerTest::dir_ = nullptr;

TEST_F(SentencePieceTokenizerTest, LoadsADirectoryWithOnlyTokenizerModel) {
  TempDir checkpoint;
  std::filesystem::copy_file(*dir_ / "tokenizer.model", checkpoint / "tokenizer.model");
  const auto tokenizer = Tokenizer::load(checkpoint.path());
  EXPECT_EQ(tokenizer->vocab_size(), 300);
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("hello world", false), false), "hello world");
}

TEST_F(SentencePieceTokenizerTest, EncodesAndDecodes) {
  const auto tokenizer = load();
  const auto ids = tokenizer->encode("hello world", false);
  ASSERT_FALSE(ids.empty());
  EXPECT_TRUE(tokenizer->id_to_token(ids[0]).starts_with("▁"));
  for (const int32_t id : ids) EXPECT_EQ(tokenizer->token_to_id(tokenizer->id_to_token(id)), id);
  EXPECT_EQ(tokenizer->token_to_id("no such piece"), std::nullopt);
  EXPECT_EQ(tokenizer->id_to_token(100000), "");
  // Characters outside the vocabulary go through byte fallback and come back.
  for (const std::string text : {"hello 🤖 café", "日本語 the lazy dog"}) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false), false), text);
  }
  // The model's own normalizer (SentencePiece's default) folds runs of whitespace.
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("  two  spaces ", false), false), "two spaces");
}

TEST_F(SentencePieceTokenizerTest, AddsBosUnlessTheConfigSaysOtherwise) {
  const auto tokenizer = load();
  const auto ids = tokenizer->encode("hello", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);  // <s>
  EXPECT_TRUE(tokenizer->is_special(1));
  EXPECT_EQ(tokenizer->encode("hello", false).size() + 1, ids.size());

  TempDir checkpoint;
  std::filesystem::copy_file(*dir_ / "tokenizer.model", checkpoint / "tokenizer.model");
  write_file(checkpoint / "tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true})");
  const auto configured = Tokenizer::load(checkpoint.path());
  const auto configured_ids = configured->encode("hello", true);
  EXPECT_NE(configured_ids.front(), 1);
  EXPECT_EQ(configured_ids.back(), 2);  // </s>
}

TEST_F(SentencePieceTokenizerTest, ControlTokensInTextAndInDecode) {
  const auto tokenizer = load();
  const auto ids = tokenizer->encode("<s>hello</s>", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tokenizer->decode(ids, true), "hello");
  EXPECT_EQ(tokenizer->decode(ids, false), "<s>hello</s>");
}

TEST_F(SentencePieceTokenizerTest, StreamingEqualsDecode) {
  const auto tokenizer = load();
  for (const std::string text : {"hello world 🤖 the quick brown fox", "<s>日本語 café</s> kiln", "x"}) {
    const auto ids = tokenizer->encode(text, true);
    for (const bool skip : {false, true}) {
      EXPECT_EQ(streamed(*tokenizer, ids, skip), tokenizer->decode(ids, skip)) << text;
    }
  }
}

TEST_F(SentencePieceTokenizerTest, MalformedTokenizerConfigIsNamed) {
  TempDir checkpoint;
  std::filesystem::copy_file(*dir_ / "tokenizer.model", checkpoint / "tokenizer.model");
  write_file(checkpoint / "tokenizer_config.json", R"({"add_bos_token": )");
  try {
    Tokenizer::load(checkpoint.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((checkpoint / "tokenizer_config.json").string() + ": malformed JSON"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(SentencePieceTokenizerTest, BrokenModelFileIsNamed) {
  TempDir checkpoint;
  write_file(checkpoint / "tokenizer.model", "not a protobuf");
  try {
    Tokenizer::load(checkpoint.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((checkpoint / "tokenizer.model").string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::tokenizer
