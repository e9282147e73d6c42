// How a family's checkpoint spells the canonical decoder: tensor names and
// storage layouts. Families differ in names, in how q, k and v are stored
// (separate, fused flat, fused grouped per KV head), in whether weights are
// stored transposed (GPT-2's Conv1D), and in how the MLP is split (gated,
// plain, mixture of experts). One description (DecoderLayout) and one mapping
// (decoder_tensors) serve every family; which biases and norms exist follows
// from the ModelSpec.
#pragma once

#include <string>
#include <vector>

#include "core/model_spec.h"
#include "models/canonical_tensor.h"

namespace kiln::models {

enum class QkvStorage {
  separate,      // q, k, v projections: "<q>.weight", "<k>.weight", "<v>.weight"
  fused_flat,    // one projection, rows [q; k; v]
  fused_grouped  // one projection, per KV head: [q_0 .. q_{g-1}, k, v] (InternLM2, Falcon-40B)
};

// Names are prefixes: ".weight" and ".bias" are appended. Per-layer names
// follow `layer_prefix` + "<index>.". An empty name means the family has none.
struct DecoderLayout {
  std::string embed = "model.embed_tokens";
  std::string pos_embed = "";  // learned positions
  std::string final_norm = "model.norm";
  std::string lm_head = "lm_head";
  std::string layer_prefix = "model.layers.";
  std::string attn_norm = "input_layernorm";
  std::string mlp_norm = "post_attention_layernorm";  // sequential blocks; second norm of parallel ones
  QkvStorage qkv_storage = QkvStorage::separate;
  std::string q = "self_attn.q_proj";
  std::string k = "self_attn.k_proj";
  std::string v = "self_attn.v_proj";
  std::string qkv_fused = "";  // fused storage: e.g. "self_attn.W_pack"
  std::string o = "self_attn.o_proj";
  // Gated MLPs: gate and up, or both already fused [gate; up] in gate_up_fused.
  // Plain MLPs: up and down.
  std::string gate = "mlp.gate_proj";
  std::string up = "mlp.up_proj";
  std::string gate_up_fused = "";
  std::string down = "mlp.down_proj";
  // Mixture of experts: router and experts ("<experts><j>.<expert_gate>" ...).
  std::string router = "";
  std::string experts = "";
  std::string expert_gate = "w1";
  std::string expert_up = "w3";
  std::string expert_down = "w2";
  bool transposed = false;              // matrices stored [in, out] (GPT-2's Conv1D)
  bool normalize_lm_head_rows = false;  // Baichuan2's NormHead, applied once at build time
};

std::vector<CanonicalTensor> decoder_tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights,
                                             const DecoderLayout& layout);

}  // namespace kiln::models
