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

// Throws, naming the parameter, unless `params` is valid.
void check_sampling(const SamplingParams& params);

// The token `params` chooses from one row of logits, the reference every
// backend's sampling follows: the repetition penalty on each distinct token of
// `history` (may be null), then greedy: the first index of the largest logit;
// otherwise the candidates by descending logit (ties: lower index first),
// top-k keeps the first k, softmax at `temperature` in double, top-p keeps
// the smallest prefix whose probability reaches top_p, and the token is the
// first whose cumulative probability exceeds uniform * (kept probability).
// `uniform`: a draw in [0, 1).
int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params,
                     const std::vector<int32_t>* history, double uniform);

// A sequence's choice of tokens: its parameters and its seeded generator.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // `history`: the sequence so far (prompt and generated), for the repetition penalty.
  int32_t next(const float* logits, int64_t vocab, const std::vector<int32_t>& history = {});
  // Greedy without a repetition penalty needs only the argmax, not every logit.
  bool needs_logits() const { return !params_.greedy || params_.repetition_penalty != 1.0; }
  // The draw in [0, 1) next() would use for its next token (one per sampled
  // token; greedy takes none): for backends that sample on the device.
  double draw();
  const SamplingParams& params() const { return params_; }

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
