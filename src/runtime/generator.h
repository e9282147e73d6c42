// Runs a set of generation requests to completion on one engine, through the
// continuous-batching Scheduler (at most max_batch_size sequences at a time,
// prompts prefilled in chunks of at most max_num_tokens per step), and scores
// token sequences teacher-forced.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine_reader.h"
#include "runtime/sampler.h"
#include "runtime/step_executor.h"

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
  const ModelSpec& spec() const { return graph_->spec(); }

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

  engine::Limits limits_;
  std::unique_ptr<StepExecutor> graph_;
};

}  // namespace kiln::runtime
