// Next-token choice from logits: greedy (argmax, first index on ties, as
// torch.argmax) or seeded sampling with temperature, top-k and top-p.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace kiln::runtime {

struct SamplingParams {
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: no limit
  double top_p = 1.0;  // 1: no limit
  uint64_t seed = 0;
  // HF's repetition penalty: logits of tokens already in the sequence are
  // divided by it when positive, multiplied when negative; 1 turns it off.
  double repetition_penalty = 1.0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // `history`: the sequence so far (prompt and generated), for the repetition penalty.
  int32_t next(const float* logits, int64_t vocab, const std::vector<int32_t>& history = {});
  // Greedy without a repetition penalty needs only the argmax, not every logit.
  bool needs_logits() const { return !params_.greedy || params_.repetition_penalty != 1.0; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float* logits, int64_t n);
// log(sum(exp(logits))), computed stably (in double).
float log_sum_exp(const float* logits, int64_t n);
// log softmax(logits)[token], computed stably.
float log_probability(const float* logits, int64_t n, int32_t token);

}  // namespace kiln::runtime
