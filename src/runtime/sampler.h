// Next-token choice from logits: greedy (argmax, first index on ties, as
// torch.argmax) or seeded sampling with temperature, top-k and top-p.
#pragma once

#include <cstdint>
#include <random>

namespace kiln::runtime {

struct SamplingParams {
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: no limit
  double top_p = 1.0;  // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t next(const float* logits, int64_t vocab);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float* logits, int64_t n);

}  // namespace kiln::runtime
