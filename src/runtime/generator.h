// Runs a set of generation requests to completion on one engine: prompts are
// prefilled in chunks of at most max_num_tokens, then all live sequences decode
// together, one token each per step. (The serving scheduler with admission,
// preemption and streaming builds on the same DecoderGraph and KvCache.)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/decoder_graph.h"
#include "runtime/sampler.h"

namespace kiln::runtime {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;
};

struct GenerationResult {
  std::vector<int32_t> tokens;                  // new tokens only
  std::string finish_reason;                    // "eos" or "length"
  std::vector<std::vector<float>> step_logits;  // with record_logits: the logits each token was chosen from
};

class Generator {
 public:
  Generator(const engine::Engine& engine, Backend& backend);
  const ModelSpec& spec() const { return graph_.spec(); }

  // Throws kiln::Error naming the request and limit when a prompt is empty,
  // too long, or holds ids outside the vocabulary.
  // `on_token(request index, token)` is called as each token is chosen, for streaming.
  using TokenCallback = std::function<void(std::size_t, int32_t)>;
  std::vector<GenerationResult> generate(const std::vector<GenerationRequest>& requests, bool record_logits = false,
                                         const TokenCallback& on_token = nullptr);
  // Teacher-forced logits for every position of `tokens`: [tokens.size(), vocab].
  std::vector<float> score(const std::vector<int32_t>& tokens);

 private:
  void validate(const GenerationRequest& request, std::size_t index) const;
  void check_ids(const std::vector<int32_t>& ids, std::size_t index) const;
  void run_wave(const std::vector<GenerationRequest>& requests, std::size_t first, std::size_t count,
                bool record_logits, const TokenCallback& on_token, std::vector<GenerationResult>& results);

  engine::Limits limits_;
  DecoderGraph graph_;
};

}  // namespace kiln::runtime
