// What the Scheduler needs of an engine: the model's facts, the KV cache's
// bookkeeping it reserves blocks in, and one step's forward. The decoder graph
// is one; a test's scripted executor is another, so the scheduling policy
// (admission, chunked prefill, preemption, finishing) is tested without one.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/model_spec.h"
#include "runtime/backend.h"
#include "runtime/kv_cache.h"

namespace kiln::runtime {

// What a step returns for its logit rows.
struct StepOutput {
  std::vector<int32_t> argmax;      // per logit row: the greedy token
  std::vector<float> max_logit;     // per logit row: its logit
  std::vector<float> log_sum_exp;   // per logit row: log(sum(exp(logits)))
  std::vector<int32_t> tokens;      // per logit row: the token its SampleRow chose (the argmax without one)
  std::vector<float> chosen_logit;  // per logit row: that token's logit, before any penalty
  std::vector<float> logits;        // [rows, vocab] on the host, only when asked for
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual const ModelSpec& spec() const = 0;
  // (Re)creates the paged KV cache with room for `num_blocks` blocks per layer.
  virtual void reset_kv_cache(int64_t num_blocks) = 0;
  virtual KvCache& kv_cache() = 0;
  virtual int64_t block_size() const = 0;
  // Runs the step (every sequence's KV blocks reserved for its new length):
  // per logit row the token `choices[i]` picks (no choices: the argmax), its
  // logit and the row's log-sum-exp; every logit only with `full_logits`.
  virtual void forward(const StepInput& step, StepOutput& out, bool full_logits,
                       const std::vector<SampleRow>& choices) = 0;
  // The step's logit rows, every logit: [logit_rows.size(), vocab].
  void forward_logits(const StepInput& step, std::vector<float>& logits) {
    StepOutput out;
    forward(step, out, true, {});
    logits = std::move(out.logits);
  }
};

}  // namespace kiln::runtime
