#include "runtime/model_weights.h"

#include "runtime/weight_verifier.h"

namespace kiln::runtime {
namespace tn = tensor_names;

ModelWeights ModelWeights::load(const engine::Engine& engine, Backend& backend, bool verify) {
  const ModelSpec& s = engine.manifest().spec;
  // Nothing loaded is used before the verifier's finish() has passed.
  WeightVerifier verifier(engine, backend, verify);
  auto required = [&](int rank, const std::string& name) {
    Weight w = backend.upload(engine.tensor(rank, name));
    verifier.uploaded(rank, name, w);
    if (w.dtype == DType::f8e4m3) {  // its scales travel with it
      const std::string scale_name = tensor_names::scale_of(name);
      const Weight scale = backend.upload(engine.tensor(rank, scale_name));
      verifier.uploaded(rank, scale_name, scale);
      w.scale = static_cast<const float*>(scale.data);
      w.scale_keep_alive = scale.keep_alive;
    }
    return w;
  };
  auto optional = [&](int rank, const std::string& name) {
    return engine.has_tensor(rank, name) ? required(rank, name) : Weight{};
  };
  ModelWeights w;
  w.embed = required(0, tn::kEmbed);
  w.pos_embed = optional(0, tn::kPosEmbed);
  w.final_norm = required(0, tn::kFinalNormWeight);
  w.final_norm_bias = optional(0, tn::kFinalNormBias);
  w.lm_head = s.tied_embeddings ? w.embed : required(0, tn::kLmHead);
  w.lm_head_bias = optional(0, tn::kLmHeadBias);
  for (int r = 0; r < engine.manifest().tensor_parallel; ++r) {
    RankWeights rank;
    for (int64_t i = 0; i < s.num_layers; ++i) {
      LayerWeights l;
      l.attn_norm = required(r, tn::layer(i, tn::kAttnNormWeight));
      l.attn_norm_bias = optional(r, tn::layer(i, tn::kAttnNormBias));
      if (!s.parallel_block || s.parallel_two_norms) {
        l.mlp_norm = required(r, tn::layer(i, tn::kMlpNormWeight));
        l.mlp_norm_bias = optional(r, tn::layer(i, tn::kMlpNormBias));
      }
      l.qkv = required(r, tn::layer(i, tn::kQkvWeight));
      l.qkv_bias = optional(r, tn::layer(i, tn::kQkvBias));
      l.out = required(r, tn::layer(i, tn::kOutWeight));
      l.out_bias = optional(r, tn::layer(i, tn::kOutBias));
      if (s.num_experts > 0) {
        l.router = required(r, tn::layer(i, tn::kRouterWeight));
        for (int64_t e = 0; e < s.num_experts; ++e) {
          MlpWeights expert;
          expert.gate_up = required(r, tn::expert(i, e, tn::kExpertGateUpWeight));
          expert.down = required(r, tn::expert(i, e, tn::kExpertDownWeight));
          l.experts.push_back(std::move(expert));
        }
      } else {
        if (s.gated_mlp) {
          l.mlp.gate_up = required(r, tn::layer(i, tn::kGateUpWeight));
        } else {
          l.mlp.up = required(r, tn::layer(i, tn::kUpWeight));
          l.mlp.up_bias = optional(r, tn::layer(i, tn::kUpBias));
        }
        l.mlp.down = required(r, tn::layer(i, tn::kDownWeight));
        l.mlp.down_bias = optional(r, tn::layer(i, tn::kDownBias));
      }
      rank.layers.push_back(std::move(l));
    }
    w.ranks.push_back(std::move(rank));
  }
  verifier.finish();
  return w;
}

}  // namespace kiln::runtime
