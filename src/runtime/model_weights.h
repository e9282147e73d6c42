// The engine's tensors, per tensor-parallel rank and layer, as the backend's
// kernels read them. Names follow core/model_spec.h's canonical table.
#pragma once

#include <vector>

#include "engine/engine_reader.h"
#include "runtime/backend.h"

namespace kiln::runtime {

struct LayerWeights {
  Weight attn_norm, attn_norm_bias, mlp_norm, mlp_norm_bias;
  Weight qkv, qkv_bias, out, out_bias;
  Weight gate_up, up, up_bias, down, down_bias;
};

struct RankWeights {
  std::vector<LayerWeights> layers;
};

struct ModelWeights {
  Weight embed, pos_embed, final_norm, final_norm_bias, lm_head, lm_head_bias;
  std::vector<RankWeights> ranks;

  // Uploads every tensor the spec needs; throws naming the first missing one.
  static ModelWeights load(const engine::Engine& engine, Backend& backend);
};

}  // namespace kiln::runtime
