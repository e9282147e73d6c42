// Continuous ("rolling") batching over one StepExecutor (the decoder graph):
// every step admits
// waiting sequences into the running batch (up to max_batch_size), gives each
// decoding sequence one token and fills the rest of the step's token budget
// (max_num_tokens) with prompt chunks (chunked prefill), and frees a
// sequence's KV blocks the moment it finishes. When the paged KV cache runs
// out, the most recently admitted sequence is preempted: its blocks are freed
// and it waits to be recomputed from its prompt and the tokens it already
// produced, so no request is lost and none sees a different result.
//
// A step is three phases: schedule() decides it (admission, KV reservation,
// preemption, the rows to run: a StepPlan that names no engine state, so it
// can be handed to every rank), execute() runs it, update() takes its tokens
// (finishes, frees). step() is the three in order.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/manifest.h"
#include "runtime/sampler.h"
#include "runtime/step_executor.h"

namespace kiln::runtime {

struct ScheduledRequest {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;
};

// One token produced by a step, for the request `id`.
struct TokenEvent {
  uint64_t id = 0;
  int32_t token = 0;
  const float* logits = nullptr;  // the row it was chosen from (see keep_logits); valid until the next step
  float logprob = 0;              // log probability of the token under the (unpenalized) logits
  bool finished = false;
  std::string finish_reason;  // when finished: "eos" or "length"
};

// Refuses what the engine cannot run, naming the limit: an empty prompt, one
// longer than max_input_len or leaving no room in the model's positions
// (`max_positions`, 0 when it sets none), max_new_tokens outside [1,
// max_output_len], or ids outside the vocabulary. The CLI's Generator and the
// server's engine loop both check requests with it before they reach a
// Scheduler. A prompt that fits but leaves fewer than max_new_tokens positions
// is not refused: the Scheduler ends it at the last position ("length").
void check_request(const engine::Limits& limits, int64_t vocab_size, int64_t max_positions,
                   const std::vector<int32_t>& prompt, int64_t max_new_tokens);
void check_token_ids(int64_t vocab_size, const std::vector<int32_t>& ids);

class Scheduler {
  struct Sequence;

 public:
  // The executor's KV cache must hold at least one sequence of the longest request.
  Scheduler(StepExecutor& executor, const engine::Limits& limits);
  ~Scheduler();

  // One step as schedule() decided it.
  struct StepPlan {
    StepInput input;                 // the rows every rank runs
    std::vector<SampleRow> choices;  // per logit row; empty: every row takes its argmax
    std::vector<uint64_t> sampled;   // per logit row: the request it gives a token to
    bool full_logits = false;        // every logit to the host (keep_logits)
    bool empty() const { return input.tokens.empty(); }

   private:
    friend class Scheduler;
    std::vector<Sequence*> sampled_sequences;             // parallel to `sampled`
    std::vector<std::pair<Sequence*, int64_t>> advanced;  // sequences and the tokens each gains
    std::vector<std::vector<int32_t>> histories;          // what choices[i].history points at
  };

  void submit(ScheduledRequest request);
  // Drops a request, waiting or running, and frees its KV blocks at once.
  void cancel(uint64_t id);
  // schedule(), execute() and update(): one engine step and the tokens it produced.
  std::vector<TokenEvent> step();
  // Admits waiting sequences, reserves every row's KV blocks (preempting the
  // latest admitted where the cache is full) and lays out the step: decoding
  // sequences first, one token each, then prompt chunks in the token budget
  // left. Empty when nothing is running.
  StepPlan schedule();
  // Runs the plan on the executor. Between schedule() and update() nothing
  // else may change the scheduler (no submit, cancel or other step).
  void execute(const StepPlan& plan);
  // The executed plan's tokens: the sequences grow, finished ones leave and
  // free their blocks.
  std::vector<TokenEvent> update(const StepPlan& plan);
  // Every TokenEvent then carries the logits its token was chosen from (otherwise
  // only sequences that sample or penalize bring their logits to the host).
  void keep_logits(bool keep) { keep_logits_ = keep; }

  bool idle() const { return waiting_.empty() && running_.empty(); }
  std::size_t running() const { return running_.size(); }
  std::size_t waiting() const { return waiting_.size(); }
  int64_t preemptions() const { return preemptions_; }

 private:
  void preempt_last();

  StepExecutor& executor_;
  engine::Limits limits_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  StepOutput output_;
  bool keep_logits_ = false;
  int64_t preemptions_ = 0;
};

}  // namespace kiln::runtime
