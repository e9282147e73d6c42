// The engine's tensors, per tensor-parallel rank and layer, as the backend's
// kernels read them. Names follow core/model_spec.h's canonical table.
#pragma once

#include <vector>

#include "engine/engine_reader.h"
#include "runtime/backend.h"

namespace kiln::runtime {

// A dense MLP (one rank's shard): gated (gate_up) or plain (up), then down.
struct MlpWeights {
  Weight gate_up, up, up_bias, down, down_bias;
};

struct LayerWeights {
  Weight attn_norm, attn_norm_bias, mlp_norm, mlp_norm_bias;
  Weight qkv, qkv_bias, out, out_bias;
  MlpWeights mlp;                   // dense layers
  Weight router;                    // mixture-of-experts layers: router ...
  std::vector<MlpWeights> experts;  // ... and one gated MLP per expert
};

struct RankWeights {
  std::vector<LayerWeights> layers;
};

struct ModelWeights {
  Weight embed, pos_embed, final_norm, final_norm_bias, lm_head, lm_head_bias;
  std::vector<RankWeights> ranks;

  // Uploads every tensor the spec needs; throws naming the first missing one,
  // or, when engine.verify_weights() and `verify`, a blob that does not match
  // its checksums.
  static ModelWeights load(const engine::Engine& engine, Backend& backend, bool verify = true);
};

}  // namespace kiln::runtime
