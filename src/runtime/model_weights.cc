#include "runtime/model_weights.h"

#include <cstddef>
#include <optional>

#include "engine/blob_verifier.h"

namespace kiln::runtime {
namespace tn = tensor_names;

ModelWeights ModelWeights::load(const engine::Engine& engine, Backend& backend) {
  const ModelSpec& s = engine.manifest().spec;
  // The blobs are verified as the tensors are read (engine/blob_verifier.h):
  // before a copying backend reads a tensor, the chunks under it are hashed,
  // which leaves them in the cache for the copy; a backend that uses the
  // mapped blobs in place has them all hashed at the end. Nothing is used
  // before finish() has passed.
  std::optional<engine::BlobVerifier> verifier;
  if (engine.verify_weights()) verifier.emplace(engine);
  const bool verify_ahead = verifier && backend.copies_weights();
  auto upload = [&](int rank, const std::string& name) {
    const TensorView view = engine.tensor(rank, name);
    if (verify_ahead) {
      const auto* blob = engine.blob(static_cast<std::size_t>(rank)).data();
      const auto begin = static_cast<uint64_t>(static_cast<const std::byte*>(view.data) - blob);
      verifier->cover(static_cast<std::size_t>(rank), begin,
                      begin + static_cast<uint64_t>(view.numel()) * dtype_size(view.dtype));
    }
    return backend.upload(view);
  };
  auto required = [&](int rank, const std::string& name) { return upload(rank, name); };
  auto optional = [&](int rank, const std::string& name) {
    return engine.has_tensor(rank, name) ? upload(rank, name) : Weight{};
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
  if (verifier) verifier->finish();
  return w;
}

}  // namespace kiln::runtime
