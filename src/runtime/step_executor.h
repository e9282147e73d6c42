// What the Scheduler needs of an engine: the model's facts, the KV cache's
// bookkeeping it reserves blocks in, and one step's forward. The decoder graph
// is one; a test's scripted executor is another, so the scheduling policy
// (admission, chunked prefill, preemption, finishing) is tested without one.
#pragma once

#include <cstdint>
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
  virtual KvCache& kv_cache() = 0;
  // Runs the step (every sequence's KV blocks reserved for its new length):
  // per logit row the token `choices[i]` picks (no choices: the argmax), its
  // logit and the row's log-sum-exp; every logit only with `full_logits`.
  virtual void forward(const StepInput& step, StepOutput& out, bool full_logits,
                       const std::vector<SampleRow>& choices) = 0;
};

}  // namespace kiln::runtime
