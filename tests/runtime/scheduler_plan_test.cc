// The scheduler's policy without an engine: a scripted executor (each row's
// next token a fixed function of its position, as a model's would be a
// function of its context) and a real KV cache's bookkeeping. Checks what
// schedule() lays out (decode rows first, prompt chunks in the budget left,
// logits only where a context completes), that a plan runs as step() runs it,
// and that preemption under a full cache gives every request the tokens it
// gets with room to spare.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "core/error.h"
#include "runtime/scheduler.h"

namespace kiln::runtime {
namespace {

constexpr int64_t kVocab = 50;
constexpr int32_t kEos = 49;

// The token after position p is 1 + (p * 7 + first) % 40: never the EOS, and
// different for requests whose prompts start differently.
class ScriptedExecutor : public StepExecutor {
 public:
  explicit ScriptedExecutor(int64_t num_blocks) : kv_(config(num_blocks)) {
    spec_.vocab_size = kVocab;
    spec_.eos_token_ids = {kEos};
  }
  const ModelSpec& spec() const override { return spec_; }
  KvCache& kv_cache() override { return kv_; }
  void reset_kv_cache(int64_t) override {}
  int64_t block_size() const override { return kv_.config().block_size; }
  void forward(const StepInput& step, StepOutput& out, bool, const std::vector<SampleRow>&) override {
    steps.push_back(step);
    // A sequence's first rows (from position 0) name its first prompt token.
    for (const StepSequence& s : step.seqs) {
      if (s.start == 0) firsts[s.kv] = step.tokens[static_cast<std::size_t>(s.row)];
    }
    out = StepOutput{};
    for (const int64_t row : step.logit_rows) {
      // The sequence's first token: the row's sequence is the one whose rows hold it.
      int32_t first = 0;
      for (const StepSequence& s : step.seqs) {
        if (row >= s.row && row < s.row + s.count) first = firsts.at(s.kv);
      }
      const int32_t token = 1 + (step.positions[static_cast<std::size_t>(row)] * 7 + first) % 40;
      out.argmax.push_back(token);
      out.tokens.push_back(token);
      out.max_logit.push_back(0.f);
      out.chosen_logit.push_back(0.f);
      out.log_sum_exp.push_back(0.f);
    }
  }
  std::vector<StepInput> steps;
  std::map<const SequenceKv*, int32_t> firsts;

 private:
  static KvCacheConfig config(int64_t num_blocks) {
    KvCacheConfig c;
    c.num_layers = 1;
    c.kv_heads = 1;
    c.head_dim = 1;
    c.block_size = 4;
    c.num_blocks = num_blocks;
    return c;
  }
  ModelSpec spec_;
  KvCache kv_;
};

engine::Limits limits(int64_t batch, int64_t tokens) {
  engine::Limits l;
  l.max_batch_size = batch;
  l.max_num_tokens = tokens;
  l.max_input_len = 64;
  l.max_output_len = 64;
  return l;
}

ScheduledRequest request(uint64_t id, int32_t first, int64_t prompt_len, int64_t new_tokens) {
  ScheduledRequest r;
  r.id = id;
  for (int64_t i = 0; i < prompt_len; ++i) r.prompt.push_back(first + static_cast<int32_t>(i % 3));
  r.max_new_tokens = new_tokens;
  return r;
}

// Runs every phase by hand until idle; each request's tokens.
std::map<uint64_t, std::vector<int32_t>> run(Scheduler& s) {
  std::map<uint64_t, std::vector<int32_t>> out;
  while (!s.idle()) {
    const Scheduler::StepPlan plan = s.schedule();
    if (plan.empty()) break;
    s.execute(plan);
    for (const TokenEvent& e : s.update(plan)) out[e.id].push_back(e.token);
  }
  return out;
}

// What request (first token f, prompt n) must produce: the script from position n on.
std::vector<int32_t> expected(int32_t first, int64_t prompt_len, int64_t new_tokens) {
  std::vector<int32_t> t;
  for (int64_t p = prompt_len - 1; p < prompt_len - 1 + new_tokens; ++p) {
    t.push_back(1 + static_cast<int32_t>((p * 7 + first) % 40));
  }
  return t;
}

TEST(SchedulerPlan, DecodeRowsFirstThenPromptChunksInTheBudgetLeft) {
  ScriptedExecutor ex(64);
  Scheduler s(ex, limits(4, 8));
  s.submit(request(1, 10, 3, 4));
  // Step 1: request 1's whole prompt (3 rows), logits at its last row.
  Scheduler::StepPlan p1 = s.schedule();
  EXPECT_EQ(p1.input.tokens.size(), 3u);
  ASSERT_EQ(p1.input.logit_rows, std::vector<int64_t>{2});
  EXPECT_EQ(p1.sampled, std::vector<uint64_t>{1});
  EXPECT_TRUE(p1.choices.empty());  // greedy: every row takes its argmax
  s.execute(p1);
  ASSERT_EQ(s.update(p1).size(), 1u);
  // Step 2: request 1 decodes one row first; request 2's 12-token prompt gets the 7 left.
  s.submit(request(2, 20, 12, 2));
  Scheduler::StepPlan p2 = s.schedule();
  ASSERT_EQ(p2.input.seqs.size(), 2u);
  EXPECT_EQ(p2.input.seqs[0].count, 1);
  EXPECT_EQ(p2.input.seqs[0].start, 3);
  EXPECT_EQ(p2.input.seqs[1].count, 7);
  EXPECT_EQ(p2.input.seqs[1].start, 0);
  // Only the decode row wants logits: the chunk does not complete its prompt.
  EXPECT_EQ(p2.input.logit_rows, std::vector<int64_t>{0});
  EXPECT_EQ(p2.sampled, std::vector<uint64_t>{1});
  for (std::size_t i = 0; i < p2.input.positions.size(); ++i) {
    EXPECT_EQ(p2.input.positions[i], i == 0 ? 3 : static_cast<int32_t>(i - 1)) << i;
  }
}

TEST(SchedulerPlan, PhasesByHandGiveWhatStepGives) {
  ScriptedExecutor a(64), b(64);
  Scheduler by_hand(a, limits(2, 5)), stepped(b, limits(2, 5));
  for (Scheduler* s : {&by_hand, &stepped}) {
    s->submit(request(1, 5, 6, 5));
    s->submit(request(2, 9, 2, 3));
    s->submit(request(3, 13, 9, 4));
  }
  const auto hand = run(by_hand);
  std::map<uint64_t, std::vector<int32_t>> step;
  while (!stepped.idle()) {
    for (const TokenEvent& e : stepped.step()) step[e.id].push_back(e.token);
  }
  EXPECT_EQ(hand, step);
  EXPECT_EQ(hand.at(1), expected(5, 6, 5));
  EXPECT_EQ(hand.at(2), expected(9, 2, 3));
  EXPECT_EQ(hand.at(3), expected(13, 9, 4));
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (std::size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].tokens, b.steps[i].tokens) << "step " << i;
    EXPECT_EQ(a.steps[i].positions, b.steps[i].positions) << "step " << i;
    EXPECT_EQ(a.steps[i].logit_rows, b.steps[i].logit_rows) << "step " << i;
  }
}

TEST(SchedulerPlan, PreemptionUnderAFullCacheGivesTheSameTokens) {
  // Three requests of 8 + 8 tokens need 4 blocks of 4 each: 6 blocks hold one
  // and a half, so the latest admitted is preempted and recomputed.
  ScriptedExecutor roomy(64), tight(6);
  Scheduler a(roomy, limits(3, 16)), b(tight, limits(3, 16));
  for (Scheduler* s : {&a, &b}) {
    for (uint64_t id = 1; id <= 3; ++id) s->submit(request(id, static_cast<int32_t>(id * 4), 8, 8));
  }
  const auto free_run = run(a);
  const auto tight_run = run(b);
  EXPECT_EQ(a.preemptions(), 0);
  EXPECT_GT(b.preemptions(), 0);
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(tight_run.at(id), expected(static_cast<int32_t>(id * 4), 8, 8)) << id;
    EXPECT_EQ(free_run.at(id), tight_run.at(id)) << id;
  }
  EXPECT_EQ(tight.kv_cache().free_blocks(), 6);  // every block back once all finished
}

TEST(SchedulerPlan, AnEmptySchedulerPlansNothing) {
  ScriptedExecutor ex(8);
  Scheduler s(ex, limits(2, 8));
  EXPECT_TRUE(s.schedule().empty());
  EXPECT_TRUE(s.step().empty());
  EXPECT_TRUE(ex.steps.empty());
}

}  // namespace
}  // namespace kiln::runtime
