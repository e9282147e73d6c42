#include "runtime/generator.h"

#include <algorithm>

#include "core/error.h"
#include "runtime/scheduler.h"
#include "runtime/step_executor_factory.h"

namespace kiln::runtime {

Generator::Generator(const engine::Engine& engine, Backend& backend)
    : limits_(engine.manifest().limits), graph_(make_step_executor(engine, backend)) {}

void Generator::validate(const GenerationRequest& r, std::size_t index) const {
  try {
    check_request(limits_, graph_->spec().vocab_size, graph_->spec().max_positions, r.prompt, r.max_new_tokens);
  } catch (const Error& e) {
    throw_error("request ", index, ": ", e.what());
  }
}

std::vector<GenerationResult> Generator::generate(const std::vector<GenerationRequest>& requests, bool record_logits,
                                                  const TokenCallback& on_token) {
  for (std::size_t i = 0; i < requests.size(); ++i) validate(requests[i], i);
  // A cache with room for every request at once: generate() never preempts.
  // (The server sizes its cache to memory instead and relies on preemption.)
  const int64_t block = graph_->block_size();
  int64_t blocks = 0;
  for (const auto& r : requests) {
    blocks += (static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens + block - 1) / block;
  }
  graph_->reset_kv_cache(blocks);
  Scheduler scheduler(*graph_, limits_);
  scheduler.keep_logits(record_logits);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    scheduler.submit({i, r.prompt, r.max_new_tokens, r.sampling, r.stop_at_eos});
  }
  std::vector<GenerationResult> results(requests.size());
  const int64_t vocab = graph_->spec().vocab_size;
  while (!scheduler.idle()) {
    for (const auto& e : scheduler.step()) {
      GenerationResult& r = results[e.id];
      r.tokens.push_back(e.token);
      if (record_logits) r.step_logits.emplace_back(e.logits, e.logits + vocab);
      if (on_token) on_token(e.id, e.token);
      if (e.finished) r.finish_reason = e.finish_reason;
    }
  }
  return results;
}

std::vector<float> Generator::score(const std::vector<int32_t>& tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0 || n > limits_.max_input_len + limits_.max_output_len) {
    throw_error("cannot score ", n, " tokens: the engine's context is 1 to ",
                limits_.max_input_len + limits_.max_output_len);
  }
  check_token_ids(graph_->spec().vocab_size, tokens);
  graph_->reset_kv_cache((n + graph_->block_size() - 1) / graph_->block_size());
  SequenceKv kv;
  std::vector<float> all, chunk_logits;
  for (int64_t start = 0; start < n; start += limits_.max_num_tokens) {
    const int64_t count = std::min(limits_.max_num_tokens, n - start);
    StepInput step;
    graph_->kv_cache().reserve(kv, start + count);
    step.seqs.push_back(StepSequence{&kv, 0, start, count});
    for (int64_t t = 0; t < count; ++t) {
      step.tokens.push_back(tokens[static_cast<std::size_t>(start + t)]);
      step.positions.push_back(static_cast<int32_t>(start + t));
      step.logit_rows.push_back(t);
    }
    graph_->forward_logits(step, chunk_logits);
    kv.length += count;
    all.insert(all.end(), chunk_logits.begin(), chunk_logits.end());
  }
  return all;
}

}  // namespace kiln::runtime
