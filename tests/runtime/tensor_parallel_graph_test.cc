// Tensor-parallel ranks at once on the CPU (TensorParallelGraph) against the
// same engine's ranks in turn on one backend (DecoderGraph), on the llama
// fixture at tp 2 and tp 4 and the Mixtral fixture at tp 2 (experts routed on
// the host in prefill, on the backend in decode): the same logits to fp32
// rounding (the two add the ranks' partial sums in another order) and the
// same greedy tokens as HuggingFace's (reference.json). A bad step fails
// every rank and the step throws, naming the cause, instead of hanging.
#include "runtime/tensor_parallel_graph.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/engine_reader.h"
#include "runtime/decoder_graph.h"
#include "runtime/generator.h"
#include "support/cli_engine.h"
#include "support/temp_dir.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;

struct Ranks {
  std::vector<std::unique_ptr<Backend>> backends;
  std::unique_ptr<TensorParallelGraph> graph;
};

Ranks parallel(const engine::Engine& engine) {
  Ranks r;
  std::vector<Backend*> raw;
  for (int i = 0; i < engine.manifest().tensor_parallel; ++i) {
    r.backends.push_back(make_cpu_backend());
    raw.push_back(r.backends.back().get());
  }
  r.graph = std::make_unique<TensorParallelGraph>(engine, raw, 1);
  return r;
}

// A prefill of the longest reference prompt (23 tokens: experts routed on the host), then three decode steps, on
// `exec`: every logit of each step.
std::vector<std::vector<float>> run_steps(StepExecutor& exec, const std::vector<int32_t>& prompt,
                                          const std::vector<int32_t>& next) {
  exec.reset_kv_cache(8);
  SequenceKv kv;
  std::vector<std::vector<float>> all;
  StepInput step;
  auto run = [&](const std::vector<int32_t>& tokens) {
    const int64_t start = kv.length, n = static_cast<int64_t>(tokens.size());
    if (!exec.kv_cache().reserve(kv, start + n)) throw_error("the test's KV cache is too small");
    step = StepInput{};
    step.tokens = tokens;
    for (int64_t t = 0; t < n; ++t) step.positions.push_back(static_cast<int32_t>(start + t));
    step.seqs = {StepSequence{&kv, 0, start, n}};
    step.logit_rows = {n - 1};
    all.emplace_back();
    exec.forward_logits(step, all.back());
    kv.length += n;
  };
  run(prompt);
  for (const int32_t t : next) run({t});
  return all;
}

class TensorParallelGraphTest : public ::testing::TestWithParam<std::pair<std::string, int>> {
 protected:
  void SetUp() override {
    const auto& [fixture, tp] = GetParam();
    model_ = fs::path(KILN_FIXTURES) / "models" / fixture;
    ASSERT_TRUE(test::build_with_cli(model_, dir_.path() / "engine", "--dtype fp32 --tp " + std::to_string(tp)));
    engine_ = std::make_unique<engine::Engine>(engine::Engine::open(dir_.path() / "engine", engine::host_cpu_target()));
    std::ifstream in(model_ / "reference.json");
    const auto j = nlohmann::json::parse(in);
    prompt_ = j.at("cases").back().at("prompt").get<std::vector<int32_t>>();
    generated_ = j.at("cases").back().at("generated").get<std::vector<int32_t>>();
  }
  fs::path model_;
  test::TempDir dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::vector<int32_t> prompt_, generated_;
};

TEST_P(TensorParallelGraphTest, RanksAtOnceComputeWhatRanksInTurnCompute) {
  const std::vector<int32_t> next(generated_.begin(), generated_.begin() + 3);
  auto backend = make_cpu_backend();
  DecoderGraph in_turn(*engine_, *backend);
  const auto want = run_steps(in_turn, prompt_, next);
  Ranks ranks = parallel(*engine_);
  const auto got = run_steps(*ranks.graph, prompt_, next);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t s = 0; s < got.size(); ++s) {
    ASSERT_EQ(got[s].size(), want[s].size());
    double worst = 0;
    for (std::size_t i = 0; i < got[s].size(); ++i) worst = std::max(worst, double{std::fabs(got[s][i] - want[s][i])});
    EXPECT_LE(worst, 1e-4) << "step " << s;
  }
}

TEST_P(TensorParallelGraphTest, GreedyTokensAreHuggingFacesThroughTheGenerator) {
  // The Generator picks TensorParallelGraph for a tp > 1 CPU engine (make_step_executor).
  auto backend = make_cpu_backend();
  Generator generator(*engine_, *backend);
  GenerationRequest r;
  r.prompt = prompt_;
  r.max_new_tokens = static_cast<int64_t>(generated_.size());
  r.stop_at_eos = false;
  const auto results = generator.generate({r});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].tokens, generated_);
}

TEST_P(TensorParallelGraphTest, ABadStepFailsEveryRankAndThrowsInsteadOfHanging) {
  Ranks ranks = parallel(*engine_);
  ranks.graph->reset_kv_cache(4);
  SequenceKv kv;
  ASSERT_TRUE(ranks.graph->kv_cache().reserve(kv, 1));
  StepInput step;
  step.tokens = {static_cast<int32_t>(ranks.graph->spec().vocab_size)};  // one past the vocabulary
  step.positions = {0};
  step.seqs = {StepSequence{&kv, 0, 0, 1}};
  step.logit_rows = {0};
  auto done = std::async(std::launch::async, [&] {
    std::vector<float> logits;
    ranks.graph->forward_logits(step, logits);
  });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "the step hung";
  try {
    done.get();
    FAIL() << "a token outside the vocabulary ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TensorParallelGraphTest,
                         ::testing::Values(std::pair<std::string, int>{"llama", 2},
                                           std::pair<std::string, int>{"llama", 4},
                                           std::pair<std::string, int>{"mixtral", 2}),
                         [](const ::testing::TestParamInfo<std::pair<std::string, int>>& param) {
                           return param.param.first + "_tp" + std::to_string(param.param.second);
                         });

}  // namespace
}  // namespace kiln::runtime
