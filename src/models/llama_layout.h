// What Llama-shaped checkpoints share: a pre-norm block with RMSNorm, rotary
// attention and a SwiGLU MLP. Families differ only in tensor names and in how
// q, k and v are stored (separate, fused flat, fused grouped per KV head), so
// one description (LlamaLayout) and one mapping serve all of them.
#pragma once

#include <string>
#include <vector>

#include "models/adapter.h"

namespace kiln::models {

enum class QkvStorage {
  separate,      // q, k, v projections: "<q>.weight", "<k>.weight", "<v>.weight"
  fused_flat,    // one projection, rows [q; k; v]
  fused_grouped  // one projection, per KV head: [q_0 .. q_{g-1}, k, v] (InternLM2)
};

struct LlamaLayout {
  std::string embed = "model.embed_tokens.weight";
  std::string final_norm = "model.norm.weight";
  std::string lm_head = "lm_head.weight";
  std::string layer_prefix = "model.layers.";  // followed by "<index>."
  std::string attn_norm = "input_layernorm.weight";
  std::string mlp_norm = "post_attention_layernorm.weight";
  QkvStorage qkv_storage = QkvStorage::separate;
  std::string q = "self_attn.q_proj";
  std::string k = "self_attn.k_proj";
  std::string v = "self_attn.v_proj";
  std::string qkv_fused;  // for fused storage: e.g. "self_attn.W_pack"
  std::string o = "self_attn.o_proj";
  std::string gate = "mlp.gate_proj";
  std::string up = "mlp.up_proj";
  std::string down = "mlp.down_proj";
  bool normalize_lm_head_rows = false;  // Baichuan2's NormHead, applied once at build time
};

// The spec fields every Llama-shaped config spells the same way (sizes, eps,
// rope, tying); the caller sets family and what its family does differently.
ModelSpec llama_spec(const checkpoint::HfConfig& config);

// RoPE settings from rope_theta / rope_scaling (either transformers style).
RopeSpec rope_from_config(const checkpoint::HfConfig& config, int64_t rotary_dim, double default_theta = 10000.0);

std::vector<CanonicalTensor> llama_tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights,
                                           const LlamaLayout& layout);

}  // namespace kiln::models
