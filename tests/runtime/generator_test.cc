// Generator on the llama fixture's engine against HuggingFace's float64
// reference (reference.json / reference.safetensors). runtime_tests links
// neither the compiler nor the checkpoint readers, so the engines are built
// with the kiln binary and reference.safetensors is read here directly.
#include "runtime/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "engine/engine_reader.h"
#include "support/cli_engine.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kLlama = fs::path(KILN_FIXTURES) / "models" / "llama";

struct ReferenceCase {
  std::vector<int32_t> prompt, generated;
  std::vector<float> logits;  // [prompt + generated, vocab]
};

// reference.json for the token ids, reference.safetensors (8-byte header
// length, JSON header, data) for the float32 logits.
std::vector<ReferenceCase> load_reference(const fs::path& dir, int64_t vocab) {
  std::ifstream in(dir / "reference.json");
  const auto j = nlohmann::json::parse(in);
  const auto file = MappedFile::open(dir / "reference.safetensors");
  uint64_t header_len;
  std::memcpy(&header_len, file->data(), 8);
  const auto header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(file->data()) + 8, header_len));
  const std::byte* data = file->data() + 8 + header_len;
  std::vector<ReferenceCase> cases;
  for (std::size_t i = 0; i < j.at("cases").size(); ++i) {
    ReferenceCase c;
    c.prompt = j["cases"][i].at("prompt").get<std::vector<int32_t>>();
    c.generated = j["cases"][i].at("generated").get<std::vector<int32_t>>();
    const auto& entry = header.at("logits_" + std::to_string(i));
    EXPECT_EQ(entry.at("dtype").get<std::string>(), "F32");
    const auto shape = entry.at("shape").get<std::vector<int64_t>>();
    EXPECT_EQ(shape, (std::vector<int64_t>{static_cast<int64_t>(c.prompt.size() + c.generated.size()), vocab}));
    const auto begin = entry.at("data_offsets")[0].get<uint64_t>(), end = entry.at("data_offsets")[1].get<uint64_t>();
    c.logits.resize((end - begin) / 4);
    std::memcpy(c.logits.data(), data + begin, end - begin);
    cases.push_back(std::move(c));
  }
  return cases;
}

// Builds an engine of the llama fixture with `kiln build` and extra options.
void build(const fs::path& output, const std::string& extra) {
  ASSERT_TRUE(test::build_with_cli(kLlama, output, extra));
}

struct Session {
  engine::Engine engine;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Generator> generator;
  explicit Session(const fs::path& dir)
      : engine(engine::Engine::open(dir, engine::host_cpu_target())), backend(make_cpu_backend()) {
    generator = std::make_unique<Generator>(engine, *backend);
  }
};

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "kiln-generator-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = new fs::path(pattern);
    build(*dir_ / "plain", "");
    build(*dir_ / "chunked", "--max-num-tokens 5");
    build(*dir_ / "budget1", "--max-num-tokens 1 --max-batch-size 3");
    build(*dir_ / "batch2", "--max-batch-size 2");
    reference_ = new std::vector<ReferenceCase>(load_reference(kLlama, 384));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (dir_) fs::remove_all(*dir_, ec);
    delete dir_;
    delete reference_;
    dir_ = nullptr;
    reference_ = nullptr;
  }

  static GenerationRequest greedy(const std::vector<int32_t>& prompt, int64_t max_new) {
    GenerationRequest r;
    r.prompt = prompt;
    r.max_new_tokens = max_new;
    r.stop_at_eos = false;
    return r;
  }
  static std::vector<GenerationRequest> reference_requests() {
    std::vector<GenerationRequest> out;
    for (const auto& c : *reference_) out.push_back(greedy(c.prompt, static_cast<int64_t>(c.generated.size())));
    return out;
  }

  static fs::path* dir_;
  static std::vector<ReferenceCase>* reference_;
};

fs::path* GeneratorTest::dir_ = nullptr;
std::vector<ReferenceCase>* GeneratorTest::reference_ = nullptr;

TEST_F(GeneratorTest, ReferenceHasCasesOfDifferentLengths) {
  ASSERT_EQ(reference_->size(), 3u);
  EXPECT_EQ((*reference_)[0].prompt.size(), 1u);
  EXPECT_EQ((*reference_)[1].prompt.size(), 7u);
  EXPECT_EQ((*reference_)[2].prompt.size(), 23u);
}

TEST_F(GeneratorTest, GreedyTokensMatchTheReference) {
  Session s(*dir_ / "plain");
  const auto results = s.generator->generate(reference_requests());
  ASSERT_EQ(results.size(), reference_->size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].tokens, (*reference_)[i].generated) << "case " << i;
    EXPECT_EQ(results[i].finish_reason, "length");
  }
}

TEST_F(GeneratorTest, BatchingGivesTheSameTokensAsGeneratingAlone) {
  Session s(*dir_ / "plain");
  // Different lengths and budgets, plus one prompt twice.
  std::vector<GenerationRequest> requests = {greedy({43}, 9), greedy({5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 4),
                                             greedy((*reference_)[2].prompt, 12), greedy({100, 200, 300}, 16),
                                             greedy({43}, 3)};
  const auto together = s.generator->generate(requests);
  ASSERT_EQ(together.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto alone = s.generator->generate({requests[i]});
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "request " << i;
    EXPECT_EQ(together[i].tokens.size(), static_cast<std::size_t>(requests[i].max_new_tokens));
  }
  // Same prompt, shorter budget: a prefix of the longer run.
  EXPECT_EQ(together[4].tokens, std::vector<int32_t>(together[0].tokens.begin(), together[0].tokens.begin() + 3));
}

TEST_F(GeneratorTest, ChunkedPrefillStillMatchesTheReference) {
  // 5 tokens per step: prompts of 7 and 23 are prefilled in chunks beside other sequences' decode steps.
  // 1 token per step: fewer tokens per step than live sequences, so some wait while others decode.
  for (const auto& [name, budget] : {std::pair<const char*, int64_t>{"chunked", 5}, {"budget1", 1}}) {
    SCOPED_TRACE(name);
    Session s(*dir_ / name);
    ASSERT_EQ(s.engine.manifest().limits.max_num_tokens, budget);
    const auto results = s.generator->generate(reference_requests(), /*record_logits=*/true);
    ASSERT_EQ(results.size(), reference_->size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& c = (*reference_)[i];
      EXPECT_EQ(results[i].tokens, c.generated) << "case " << i;
      // Each token was chosen from logits that match HF's at that position.
      ASSERT_EQ(results[i].step_logits.size(), c.generated.size());
      for (std::size_t t = 0; t < c.generated.size(); ++t) {
        const float* expected = c.logits.data() + (c.prompt.size() - 1 + t) * 384;
        for (int64_t v = 0; v < 384; ++v) {
          ASSERT_NEAR(results[i].step_logits[t][static_cast<std::size_t>(v)], expected[v], 1e-3)
              << "case " << i << " step " << t << " token " << v;
        }
      }
    }
  }
}

void expect_scores_match(Generator& g, const std::vector<ReferenceCase>& reference) {
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const auto& c = reference[i];
    std::vector<int32_t> tokens = c.prompt;
    tokens.insert(tokens.end(), c.generated.begin(), c.generated.end());
    const auto logits = g.score(tokens);
    ASSERT_EQ(logits.size(), c.logits.size()) << "case " << i;
    double worst = 0;
    for (std::size_t k = 0; k < logits.size(); ++k) worst = std::max(worst, std::fabs(double(logits[k]) - c.logits[k]));
    EXPECT_LE(worst, 1e-3) << "case " << i;
  }
}

TEST_F(GeneratorTest, ScoreMatchesReferenceLogits) {
  Session s(*dir_ / "plain");
  expect_scores_match(*s.generator, *reference_);
}

TEST_F(GeneratorTest, ChunkedScoreMatchesReferenceLogits) {
  for (const char* name : {"chunked", "budget1"}) {
    SCOPED_TRACE(name);
    Session s(*dir_ / name);
    expect_scores_match(*s.generator, *reference_);
  }
}

TEST_F(GeneratorTest, MoreRequestsThanMaxBatchSizeAllComplete) {
  Session s(*dir_ / "batch2");
  ASSERT_EQ(s.engine.manifest().limits.max_batch_size, 2);
  const auto results = s.generator->generate(reference_requests());
  ASSERT_EQ(results.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].tokens, (*reference_)[i].generated) << "case " << i;
    EXPECT_EQ(results[i].finish_reason, "length");
  }
}

TEST_F(GeneratorTest, StopsAtEosWithoutDisturbingTheOtherSequences) {
  // An engine whose EOS is a token the reference continuations reach: engine.json's
  // model.eos_token_ids is not covered by the blob checksums, so a copy can be edited.
  const fs::path eos_engine = *dir_ / "eos";
  fs::copy(*dir_ / "plain", eos_engine, fs::copy_options::recursive);
  const int32_t eos = (*reference_)[0].generated.at(2);
  {
    std::ifstream in(eos_engine / "engine.json");
    auto j = nlohmann::json::parse(in);
    in.close();
    j["model"]["eos_token_ids"] = {eos};
    std::ofstream(eos_engine / "engine.json") << j.dump();
  }
  Session s(eos_engine);
  auto requests = reference_requests();
  for (auto& r : requests) r.stop_at_eos = true;
  const auto results = s.generator->generate(requests);
  int stopped = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& expected = (*reference_)[i].generated;
    const auto first = std::find(expected.begin(), expected.end(), eos);
    if (first == expected.end()) {
      EXPECT_EQ(results[i].tokens, expected) << "case " << i;
      EXPECT_EQ(results[i].finish_reason, "length");
    } else {
      ++stopped;
      EXPECT_EQ(results[i].tokens, std::vector<int32_t>(expected.begin(), first + 1)) << "case " << i;
      EXPECT_EQ(results[i].finish_reason, "eos");
    }
  }
  EXPECT_GE(stopped, 1);
}

TEST_F(GeneratorTest, RejectsInvalidRequestsNamingTheLimit) {
  Session s(*dir_ / "plain");
  auto error = [&](const std::vector<GenerationRequest>& requests) {
    try {
      s.generator->generate(requests);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error({greedy({1}, 2), greedy({}, 2)}), HasSubstr("request 1"));
  EXPECT_THAT(error({greedy({1, 384}, 2)}), HasSubstr("384"));
  EXPECT_THAT(error({greedy({-1}, 2)}), HasSubstr("-1"));
  EXPECT_THAT(error({greedy(std::vector<int32_t>(257, 1), 2)}), HasSubstr("max_input_len 256"));
  EXPECT_THAT(error({greedy({1}, 0)}), HasSubstr("max_new_tokens"));
  EXPECT_THAT(error({greedy({1}, 257)}), HasSubstr("max_output_len 256"));
  EXPECT_THROW(s.generator->score({}), Error);
  EXPECT_THROW(s.generator->score({1, 999}), Error);
}

}  // namespace
}  // namespace kiln::runtime
