#include "runtime/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::runtime {

struct Scheduler::Sequence {
  ScheduledRequest request;
  Sampler sampler;
  SequenceKv kv;
  std::vector<int32_t> generated;
  // Tokens whose K and V must be computed before decoding: the prompt, plus
  // the generated tokens after a preemption (recompute).
  std::vector<int32_t> context;
  int64_t prefilled = 0;

  explicit Sequence(ScheduledRequest r) : request(std::move(r)), sampler(request.sampling), context(request.prompt) {}
  bool decoding() const { return prefilled == static_cast<int64_t>(context.size()); }
};

void check_token_ids(int64_t vocab_size, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) throw_error("token id ", id, " is outside the vocabulary [0, ", vocab_size, ")");
  }
}

void check_request(const engine::Limits& limits, int64_t vocab_size, int64_t max_positions,
                   const std::vector<int32_t>& prompt, int64_t max_new_tokens) {
  const auto len = static_cast<int64_t>(prompt.size());
  if (len == 0) throw_error("the prompt is empty");
  if (len > limits.max_input_len) {
    throw_error("the prompt has ", len, " tokens, more than the engine's max_input_len ", limits.max_input_len);
  }
  if (max_positions > 0 && len >= max_positions) {
    throw_error("the prompt has ", len, " tokens, leaving no room for new tokens in the model's ", max_positions,
                " positions (max_positions)");
  }
  if (max_new_tokens < 1 || max_new_tokens > limits.max_output_len) {
    throw_error("max_new_tokens ", max_new_tokens, " must be between 1 and the engine's max_output_len ",
                limits.max_output_len);
  }
  check_token_ids(vocab_size, prompt);
}

Scheduler::Scheduler(StepExecutor& executor, const engine::Limits& limits) : executor_(executor), limits_(limits) {}
Scheduler::~Scheduler() = default;

void Scheduler::submit(ScheduledRequest request) {
  if (request.prompt.empty()) throw_error("request ", request.id, ": the prompt is empty");
  // The sequence (prompt and new tokens) stays within the model's positions: a
  // request that would pass them ends at the last one, finishing with "length".
  const int64_t positions = executor_.spec().max_positions;
  const auto prompt_len = static_cast<int64_t>(request.prompt.size());
  if (positions > 0) {
    if (prompt_len >= positions) {
      throw_error("request ", request.id, ": the prompt has ", prompt_len, " tokens, leaving no room in the model's ",
                  positions, " positions");
    }
    request.max_new_tokens = std::min(request.max_new_tokens, positions - prompt_len);
  }
  waiting_.push_back(std::make_unique<Sequence>(std::move(request)));
}

void Scheduler::cancel(uint64_t id) {
  auto match = [id](const std::unique_ptr<Sequence>& s) { return s->request.id == id; };
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), match), waiting_.end());
  for (auto& s : running_) {
    if (match(s)) executor_.kv_cache().release(s->kv);
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(), match), running_.end());
}

// Frees the KV blocks of the most recently admitted running sequence and sends
// it back to the head of the queue, to be recomputed from its prompt and the
// tokens it already produced.
void Scheduler::preempt_last() {
  auto victim = std::move(running_.back());
  running_.pop_back();
  executor_.kv_cache().release(victim->kv);
  victim->context = victim->request.prompt;
  victim->context.insert(victim->context.end(), victim->generated.begin(), victim->generated.end());
  victim->prefilled = 0;
  waiting_.push_front(std::move(victim));
  ++preemptions_;
}

std::vector<TokenEvent> Scheduler::step() {
  const StepPlan plan = schedule();
  if (plan.empty()) return {};
  execute(plan);
  return update(plan);
}

Scheduler::StepPlan Scheduler::schedule() {
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < limits_.max_batch_size) {
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  // Every decoding sequence needs room for one more token. Preempting from the
  // back (the latest admitted, possibly the sequence itself) never touches a
  // sequence already given room, and nothing is scheduled yet.
  for (std::size_t i = 0; i < running_.size();) {
    Sequence& s = *running_[i];
    if (!s.decoding() || executor_.kv_cache().reserve(s.kv, s.kv.length + 1)) {
      ++i;
    } else if (running_.size() > 1) {
      preempt_last();
    } else {
      throw_error("the KV cache cannot hold one sequence of ", s.kv.length + 1, " tokens");
    }
  }

  StepPlan plan;
  StepInput& input = plan.input;
  int64_t budget = limits_.max_num_tokens;
  auto schedule_rows = [&](Sequence& s, const int32_t* tokens, int64_t n, bool wants_logits) {
    const int64_t start = s.kv.length;
    input.seqs.push_back(StepSequence{&s.kv, static_cast<int64_t>(input.tokens.size()), start, n});
    for (int64_t t = 0; t < n; ++t) {
      input.tokens.push_back(tokens[t]);
      input.positions.push_back(static_cast<int32_t>(start + t));
    }
    if (wants_logits) {
      input.logit_rows.push_back(static_cast<int64_t>(input.tokens.size()) - 1);
      plan.sampled.push_back(s.request.id);
      plan.sampled_sequences.push_back(&s);
    }
    plan.advanced.emplace_back(&s, n);
    budget -= n;
  };
  // Decoding sequences first, one token each, so they keep streaming while prompts prefill.
  for (auto& s : running_) {
    if (s->decoding() && budget > 0) schedule_rows(*s, &s->generated.back(), 1, true);
  }
  // Then prompt chunks in the room left; a chunk that finds no KV room waits for a later step.
  for (auto& s : running_) {
    if (s->decoding() || budget <= 0) continue;
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(s->context.size()) - s->prefilled, budget);
    if (!executor_.kv_cache().reserve(s->kv, s->kv.length + n)) continue;
    // Logits only when the chunk completes the context: they choose the next token.
    const bool completes = s->prefilled + n == static_cast<int64_t>(s->context.size());
    schedule_rows(*s, s->context.data() + s->prefilled, n, completes);
    s->prefilled += n;
  }
  if (input.tokens.empty()) {
    if (running_.empty()) return plan;
    // Prompts holding parts of the cache can block each other: free the latest and retry.
    if (running_.size() > 1) {
      preempt_last();
      return schedule();
    }
    throw_error("the KV cache is too small for a request of ", running_[0]->context.size(), " tokens");
  }

  // Tokens are chosen on the backend (sampling, penalties); every logit comes
  // to the host only when the caller records them.
  const std::size_t rows = plan.sampled_sequences.size();
  plan.choices.resize(rows);
  plan.histories.resize(rows);
  bool any_choice = false;
  for (std::size_t i = 0; i < rows; ++i) {
    Sequence& s = *plan.sampled_sequences[i];
    if (!s.sampler.needs_logits()) continue;
    any_choice = true;
    SampleRow& c = plan.choices[i];
    c.params = &s.sampler.params();
    if (s.request.sampling.repetition_penalty != 1.0) {
      plan.histories[i] = s.request.prompt;
      plan.histories[i].insert(plan.histories[i].end(), s.generated.begin(), s.generated.end());
      c.history = &plan.histories[i];
    }
    if (!s.request.sampling.greedy) c.uniform = s.sampler.draw();
  }
  if (!any_choice) plan.choices.clear();
  plan.full_logits = keep_logits_;
  return plan;
}

void Scheduler::execute(const StepPlan& plan) {
  executor_.forward(plan.input, output_, plan.full_logits, plan.choices);
}

std::vector<TokenEvent> Scheduler::update(const StepPlan& plan) {
  for (auto [s, n] : plan.advanced) s->kv.length += n;
  const int64_t vocab = executor_.spec().vocab_size;
  const auto& eos = executor_.spec().eos_token_ids;
  std::vector<TokenEvent> events;
  for (std::size_t i = 0; i < plan.sampled_sequences.size(); ++i) {
    Sequence& s = *plan.sampled_sequences[i];
    const float* row = plan.full_logits ? output_.logits.data() + static_cast<int64_t>(i) * vocab : nullptr;
    TokenEvent e{s.request.id, output_.tokens[i], row, 0.f, false, ""};
    // log softmax of the unpenalized logits: the chosen logit less the row's log-sum-exp.
    e.logprob = output_.chosen_logit[i] - output_.log_sum_exp[i];
    s.generated.push_back(e.token);
    const bool is_eos = s.request.stop_at_eos && std::find(eos.begin(), eos.end(), e.token) != eos.end();
    if (is_eos || static_cast<int64_t>(s.generated.size()) >= s.request.max_new_tokens) {
      e.finished = true;
      e.finish_reason = is_eos ? "eos" : "length";
    }
    events.push_back(std::move(e));
  }
  // Finished sequences leave at once, and their blocks with them.
  for (const auto& e : events) {
    if (e.finished) cancel(e.id);
  }
  return events;
}

}  // namespace kiln::runtime
