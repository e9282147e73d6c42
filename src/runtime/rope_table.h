// Rotary-embedding angles for every position up to the engine's context,
// computed once in double precision with the spec's frequency scaling
// (linear, llama3), as cos/sin tables of [positions][rotary_dim / 2].
#pragma once

#include <vector>

#include "core/model_spec.h"

namespace kiln::runtime {

// The per-pair inverse frequencies after scaling.
std::vector<double> rope_inv_freq(const RopeSpec& rope);

struct RopeTable {
  int64_t half = 0;  // rotary_dim / 2
  int64_t positions = 0;
  std::vector<float> cos, sin;  // [positions][half]

  static RopeTable build(const RopeSpec& rope, int64_t positions);
};

}  // namespace kiln::runtime
