// Every case of ../shared/fixtures/tokenizers/<name>/cases.json, produced by
// HuggingFace `tokenizers` from the real tokenizer files: encode ids and
// tokens, decode text, and streaming detokenization against decode.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using testing::kTokenizerFixtures;
using testing::streamed;

struct Fixture {
  std::unique_ptr<Tokenizer> tokenizer;
  nlohmann::json cases;
  double load_ms = 0;
};

// Loading llama3/qwen3 takes a while, so each fixture is loaded once per process.
const Fixture& fixture(const std::string& name) {
  static std::map<std::string, Fixture> loaded;
  auto it = loaded.find(name);
  if (it == loaded.end()) {
    Fixture f;
    const auto start = std::chrono::steady_clock::now();
    f.tokenizer = Tokenizer::load(kTokenizerFixtures / name);
    f.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::ifstream in(kTokenizerFixtures / name / "cases.json");
    f.cases = nlohmann::json::parse(in);
    it = loaded.emplace(name, std::move(f)).first;
  }
  return it->second;
}

class FixtureCasesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureCasesTest, LoadsQuickly) {
  const Fixture& f = fixture(GetParam());
  std::cout << GetParam() << " tokenizer load: " << f.load_ms << " ms\n";
  RecordProperty("load_ms", std::to_string(f.load_ms));
  EXPECT_LT(f.load_ms, 5000.0);
}

TEST_P(FixtureCasesTest, EncodeMatchesHuggingFace) {
  const Fixture& f = fixture(GetParam());
  const auto& cases = f.cases["encode"];
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const bool add_special_tokens = c["add_special_tokens"];
    SCOPED_TRACE(::testing::Message() << "text=" << ::testing::PrintToString(text)
                                      << " add_special_tokens=" << add_special_tokens);
    const std::vector<int32_t> ids = f.tokenizer->encode(text, add_special_tokens);
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>());
    std::vector<std::string> tokens;
    for (const int32_t id : ids) tokens.push_back(f.tokenizer->id_to_token(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
    for (const std::string& token : c["tokens"].get<std::vector<std::string>>()) {
      EXPECT_TRUE(f.tokenizer->token_to_id(token).has_value()) << token;
    }
  }
}

TEST_P(FixtureCasesTest, DecodeMatchesHuggingFace) {
  const Fixture& f = fixture(GetParam());
  const auto& cases = f.cases["decode"];
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const bool skip = c["skip_special_tokens"];
    SCOPED_TRACE(::testing::Message() << "ids=" << ::testing::PrintToString(ids) << " skip=" << skip);
    EXPECT_EQ(f.tokenizer->decode(ids, skip), c["text"].get<std::string>());
  }
}

TEST_P(FixtureCasesTest, StreamingEqualsDecode) {
  const Fixture& f = fixture(GetParam());
  std::vector<std::vector<int32_t>> sequences;
  for (const auto& c : f.cases["encode"]) sequences.push_back(c["ids"].get<std::vector<int32_t>>());
  for (const auto& c : f.cases["decode"]) sequences.push_back(c["ids"].get<std::vector<int32_t>>());
  for (const auto& ids : sequences) {
    for (const bool skip : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "ids=" << ::testing::PrintToString(ids) << " skip=" << skip);
      EXPECT_EQ(streamed(*f.tokenizer, ids, skip), f.tokenizer->decode(ids, skip));
    }
  }
}

TEST_P(FixtureCasesTest, VocabSizeCountsAddedTokens) {
  const Fixture& f = fixture(GetParam());
  const int64_t size = f.tokenizer->vocab_size();
  // The fixture's random decode ids were drawn below HF's get_vocab_size().
  int32_t max_random_id = 0;
  for (const auto& c : f.cases["decode"]) {
    for (const int32_t id : c["ids"].get<std::vector<int32_t>>()) max_random_id = std::max(max_random_id, id);
  }
  EXPECT_LT(max_random_id, size);
  EXPECT_GT(size, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureCasesTest, ::testing::Values("llama2", "llama3", "qwen3", "gpt2"));

}  // namespace
}  // namespace kiln::tokenizer
