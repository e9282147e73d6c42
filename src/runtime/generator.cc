#include "runtime/generator.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::runtime {

Generator::Generator(const engine::Engine& engine, Backend& backend)
    : limits_(engine.manifest().limits), graph_(engine, backend) {}

void Generator::validate(const GenerationRequest& r, std::size_t index) const {
  const auto len = static_cast<int64_t>(r.prompt.size());
  if (len == 0) throw_error("request ", index, ": the prompt is empty");
  if (len > limits_.max_input_len) {
    throw_error("request ", index, ": the prompt has ", len, " tokens, more than the engine's max_input_len ",
                limits_.max_input_len);
  }
  if (r.max_new_tokens < 1 || r.max_new_tokens > limits_.max_output_len) {
    throw_error("request ", index, ": max_new_tokens ", r.max_new_tokens, " must be between 1 and the engine's ",
                "max_output_len ", limits_.max_output_len);
  }
  check_ids(r.prompt, index);
}

void Generator::check_ids(const std::vector<int32_t>& ids, std::size_t index) const {
  for (int32_t id : ids) {
    if (id < 0 || id >= graph_.spec().vocab_size) {
      throw_error("request ", index, ": token id ", id, " is outside the vocabulary [0, ", graph_.spec().vocab_size,
                  ")");
    }
  }
}

std::vector<GenerationResult> Generator::generate(const std::vector<GenerationRequest>& requests, bool record_logits,
                                                  const TokenCallback& on_token) {
  for (std::size_t i = 0; i < requests.size(); ++i) validate(requests[i], i);
  std::vector<GenerationResult> results(requests.size());
  // The engine was built for at most max_batch_size concurrent sequences.
  const auto wave = static_cast<std::size_t>(limits_.max_batch_size);
  for (std::size_t first = 0; first < requests.size(); first += wave) {
    run_wave(requests, first, std::min(wave, requests.size() - first), record_logits, on_token, results);
  }
  return results;
}

void Generator::run_wave(const std::vector<GenerationRequest>& requests, std::size_t first, std::size_t count,
                         bool record_logits, const TokenCallback& on_token,
                         std::vector<GenerationResult>& results) {
  struct Live {
    const GenerationRequest* request;
    GenerationResult* result;
    SequenceKv kv;
    Sampler sampler;
    int64_t prefilled = 0;
    bool done = false;
  };
  const int64_t block = graph_.block_size();
  int64_t blocks = 0;
  std::vector<Live> live;
  for (std::size_t i = first; i < first + count; ++i) {
    const auto& r = requests[i];
    blocks += (static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens + block - 1) / block;
    live.push_back(Live{&r, &results[i], {}, Sampler(r.sampling)});
  }
  graph_.reset_kv_cache(blocks);
  const auto& eos = graph_.spec().eos_token_ids;
  std::vector<float> logits;
  std::vector<Live*> sampled;
  for (;;) {
    StepInput step;
    sampled.clear();
    std::vector<std::pair<SequenceKv*, int64_t>> advanced;
    int64_t budget = limits_.max_num_tokens;
    auto add = [&](Live& s, const int32_t* tokens, int64_t n, bool wants_logits) {
      const int64_t start = s.kv.length;
      if (!graph_.kv_cache().reserve(s.kv, start + n)) throw_error("internal: KV cache sized too small");
      step.seqs.push_back(StepSequence{&s.kv, static_cast<int64_t>(step.tokens.size()), start, n});
      advanced.emplace_back(&s.kv, n);
      for (int64_t t = 0; t < n; ++t) {
        step.tokens.push_back(tokens[t]);
        step.positions.push_back(static_cast<int32_t>(start + t));
      }
      if (wants_logits) {
        step.logit_rows.push_back(static_cast<int64_t>(step.tokens.size()) - 1);
        sampled.push_back(&s);
      }
      budget -= n;
    };
    // Decoding sequences first (one token each), then prompt chunks in the room left.
    for (auto& s : live) {
      if (!s.done && s.prefilled == static_cast<int64_t>(s.request->prompt.size()) && budget > 0) {
        add(s, &s.result->tokens.back(), 1, true);
      }
    }
    for (auto& s : live) {
      const auto prompt_len = static_cast<int64_t>(s.request->prompt.size());
      if (s.done || s.prefilled == prompt_len || budget <= 0) continue;
      const int64_t n = std::min(prompt_len - s.prefilled, budget);
      add(s, s.request->prompt.data() + s.prefilled, n, s.prefilled + n == prompt_len);
      s.prefilled += n;
    }
    if (step.tokens.empty()) break;
    graph_.forward(step, logits);
    for (auto [kv, n] : advanced) kv->length += n;
    const int64_t vocab = graph_.spec().vocab_size;
    for (std::size_t i = 0; i < sampled.size(); ++i) {
      Live& s = *sampled[i];
      const float* row = logits.data() + static_cast<int64_t>(i) * vocab;
      const int32_t token = s.sampler.next(row, vocab);
      s.result->tokens.push_back(token);
      if (record_logits) s.result->step_logits.emplace_back(row, row + vocab);
      if (on_token) on_token(static_cast<std::size_t>(s.result - results.data()), token);
      const bool is_eos = s.request->stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
      if (is_eos || static_cast<int64_t>(s.result->tokens.size()) >= s.request->max_new_tokens) {
        s.result->finish_reason = is_eos ? "eos" : "length";
        s.done = true;
        graph_.kv_cache().release(s.kv);
      }
    }
  }
}

std::vector<float> Generator::score(const std::vector<int32_t>& tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0 || n > limits_.max_input_len + limits_.max_output_len) {
    throw_error("cannot score ", n, " tokens: the engine's context is 1 to ",
                limits_.max_input_len + limits_.max_output_len);
  }
  check_ids(tokens, 0);
  graph_.reset_kv_cache((n + graph_.block_size() - 1) / graph_.block_size());
  SequenceKv kv;
  std::vector<float> all, chunk_logits;
  for (int64_t start = 0; start < n; start += limits_.max_num_tokens) {
    const int64_t count = std::min(limits_.max_num_tokens, n - start);
    StepInput step;
    graph_.kv_cache().reserve(kv, start + count);
    step.seqs.push_back(StepSequence{&kv, 0, start, count});
    for (int64_t t = 0; t < count; ++t) {
      step.tokens.push_back(tokens[static_cast<std::size_t>(start + t)]);
      step.positions.push_back(static_cast<int32_t>(start + t));
      step.logit_rows.push_back(t);
    }
    graph_.forward(step, chunk_logits);
    kv.length += count;
    all.insert(all.end(), chunk_logits.begin(), chunk_logits.end());
  }
  return all;
}

}  // namespace kiln::runtime
