#include "runtime/model_weights.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include "engine/blob_verifier.h"

namespace kiln::runtime {
namespace tn = tensor_names;

namespace {

// Threads that hash the blobs while the weights load. Where the backend uses
// the mapped engine in place, hashing is all the load does: every core. Where
// it copies the weights to a device, the copy's own threads need cores too;
// half of them measured best on an H200 host (1, 2, 4, 8, 16 tried:
// docs/cuda.md). KILN_VERIFY_THREADS overrides, for measuring.
int verify_threads(const Backend& backend) {
  if (const char* env = std::getenv("KILN_VERIFY_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return backend.copies_weights() ? std::max(1, cores / 2) : cores;
}

}  // namespace

ModelWeights ModelWeights::load(const engine::Engine& engine, Backend& backend) {
  const ModelSpec& s = engine.manifest().spec;
  // The blobs are hashed while the tensors are uploaded (both read the same
  // mapped pages); nothing is used before finish() has passed.
  std::optional<engine::BlobVerifier> verifier;
  if (engine.verify_weights()) verifier.emplace(engine, verify_threads(backend));
  auto required = [&](int rank, const std::string& name) { return backend.upload(engine.tensor(rank, name)); };
  auto optional = [&](int rank, const std::string& name) {
    return engine.has_tensor(rank, name) ? backend.upload(engine.tensor(rank, name)) : Weight{};
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
