// The continuous-batching scheduler on the llama fixture's engine: admission
// up to max_batch_size, chunked prefill beside decoding, preemption when the
// KV cache runs out (recompute must give the very same tokens), cancellation.
// Expected tokens are HuggingFace's greedy continuations (reference.json).
#include "runtime/scheduler.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/engine_reader.h"
#include "runtime/decoder_graph.h"
#include "runtime/sampler.h"
#include "support/cli_engine.h"
#include "support/temp_dir.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;
const fs::path kLlama = fs::path(KILN_FIXTURES) / "models" / "llama";

struct Case {
  std::vector<int32_t> prompt, generated;
};

std::vector<Case> reference_cases() {
  std::ifstream in(kLlama / "reference.json");
  const auto j = nlohmann::json::parse(in);
  std::vector<Case> cases;
  for (const auto& c : j.at("cases")) {
    cases.push_back({c.at("prompt").get<std::vector<int32_t>>(), c.at("generated").get<std::vector<int32_t>>()});
  }
  return cases;
}

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_TRUE(test::build_with_cli(kLlama, dir_->path() / "engine", "--max-batch-size 2 --max-num-tokens 8"));
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    engine_ =
        std::make_unique<engine::Engine>(engine::Engine::open(dir_->path() / "engine", engine::host_cpu_target()));
    backend_ = make_cpu_backend();
    graph_ = std::make_unique<DecoderGraph>(*engine_, *backend_);
  }
  // Runs the scheduler to completion; returns each request's tokens.
  std::map<uint64_t, std::vector<int32_t>> run(Scheduler& s, int* max_running = nullptr) {
    std::map<uint64_t, std::vector<int32_t>> out;
    while (!s.idle()) {
      for (const auto& e : s.step()) out[e.id].push_back(e.token);
      if (max_running) *max_running = std::max(*max_running, static_cast<int>(s.running()));
    }
    return out;
  }
  ScheduledRequest request(uint64_t id, const Case& c) {
    return {id, c.prompt, static_cast<int64_t>(c.generated.size()), {}, /*stop_at_eos=*/false};
  }

  static test::TempDir* dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<DecoderGraph> graph_;
};
test::TempDir* SchedulerTest::dir_ = nullptr;

TEST_F(SchedulerTest, BatchesUpToTheLimitAndMatchesHuggingFace) {
  const auto cases = reference_cases();
  graph_->reset_kv_cache(64);
  Scheduler s(*graph_, engine_->manifest().limits);
  for (std::size_t i = 0; i < cases.size(); ++i) s.submit(request(i, cases[i]));
  int max_running = 0;
  const auto out = run(s, &max_running);
  EXPECT_EQ(max_running, 2) << "max_batch_size 2 must cap the running batch";
  for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(out.at(i), cases[i].generated) << i;
  EXPECT_EQ(s.preemptions(), 0);
  EXPECT_EQ(graph_->kv_cache().free_blocks(), 64) << "finished sequences must free their blocks";
}

// Greedy steps bring only each row's argmax and log-sum-exp to the host; the
// tokens and log probabilities must be those computed from the full logits.
TEST_F(SchedulerTest, GreedyWithoutLogitsMatchesFullLogits) {
  const auto cases = reference_cases();
  std::map<uint64_t, std::vector<std::pair<int32_t, float>>> summary, full;
  for (bool keep : {false, true}) {
    graph_->reset_kv_cache(64);
    Scheduler s(*graph_, engine_->manifest().limits);
    s.keep_logits(keep);
    for (std::size_t i = 0; i < cases.size(); ++i) s.submit(request(i, cases[i]));
    while (!s.idle()) {
      for (const auto& e : s.step()) {
        ASSERT_EQ(e.logits != nullptr, keep) << "logits reach the host only when kept";
        if (keep) {
          EXPECT_NEAR(e.logprob, log_probability(e.logits, graph_->spec().vocab_size, e.token), 1e-5);
        }
        (keep ? full : summary)[e.id].emplace_back(e.token, e.logprob);
      }
    }
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(summary.at(i).size(), cases[i].generated.size());
    for (std::size_t t = 0; t < cases[i].generated.size(); ++t) {
      EXPECT_EQ(summary.at(i)[t].first, cases[i].generated[t]) << "request " << i << " token " << t;
      EXPECT_NEAR(summary.at(i)[t].second, full.at(i)[t].second, 1e-5) << "request " << i << " token " << t;
      EXPECT_LT(summary.at(i)[t].second, 0.f);
    }
  }
}

TEST_F(SchedulerTest, PreemptsWhenTheCacheRunsOutAndRecomputesExactly) {
  const auto cases = reference_cases();  // prompts of 1, 7 and 23 tokens, 12 new tokens each
  // 3 blocks of 16 tokens: the 35-token sequence alone needs all of them, so
  // sequences running together must be preempted and recomputed.
  graph_->reset_kv_cache(3);
  Scheduler s(*graph_, engine_->manifest().limits);
  s.submit(request(0, cases[2]));
  s.submit(request(1, cases[1]));
  s.submit(request(2, cases[0]));
  const auto out = run(s);
  EXPECT_GT(s.preemptions(), 0);
  EXPECT_EQ(out.at(0), cases[2].generated);
  EXPECT_EQ(out.at(1), cases[1].generated);
  EXPECT_EQ(out.at(2), cases[0].generated);
  EXPECT_EQ(graph_->kv_cache().free_blocks(), 3);
}

TEST_F(SchedulerTest, DecodingContinuesWhileALongPromptPrefills) {
  const auto cases = reference_cases();
  graph_->reset_kv_cache(64);
  Scheduler s(*graph_, engine_->manifest().limits);
  s.submit(request(0, cases[0]));  // 1-token prompt: decoding after the first step
  s.step();
  s.submit(request(1, cases[2]));  // 23-token prompt: 8 tokens a step minus the decode token
  int steps_with_token_for_0 = 0;
  for (int i = 0; i < 3; ++i) {
    for (const auto& e : s.step()) steps_with_token_for_0 += e.id == 0;
  }
  EXPECT_EQ(steps_with_token_for_0, 3) << "the decoding sequence must get a token every step of the prefill";
}

TEST_F(SchedulerTest, CancelFreesTheSequenceAtOnce) {
  const auto cases = reference_cases();
  graph_->reset_kv_cache(16);
  Scheduler s(*graph_, engine_->manifest().limits);
  s.submit(request(7, cases[2]));
  s.submit(request(8, cases[1]));
  s.step();
  s.step();
  EXPECT_LT(graph_->kv_cache().free_blocks(), 16);
  s.cancel(7);
  s.cancel(8);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(graph_->kv_cache().free_blocks(), 16);
}

TEST_F(SchedulerTest, RefusesACacheTooSmallForOneSequence) {
  const auto cases = reference_cases();
  graph_->reset_kv_cache(1);  // 16 tokens; the 23-token prompt can never fit
  Scheduler s(*graph_, engine_->manifest().limits);
  s.submit(request(0, cases[2]));
  EXPECT_THROW(run(s), kiln::Error);
}

}  // namespace
}  // namespace kiln::runtime
