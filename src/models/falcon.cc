// Falcon: parallel attention + MLP, LayerNorm, GELU MLP, fused
// query_key_value. Falcon-7B is multi-query ([q..q; k; v]); Falcon-40B/180B
// (new_decoder_architecture) groups [q_0..q_{g-1}, k, v] per KV head and gives
// attention and MLP their own norms (ln_attn, ln_mlp); the original multi-head
// layout interleaves [q, k, v] per head. RoPE, or ALiBi when `alibi`, whose
// bias Falcon scales with the scores by 1/sqrt(head_dim).
#include <cmath>

#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec falcon_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = common_spec(c);
  use_gpt_style_block(s, activation_from(c, "activation", "gelu"));
  const bool new_arch = c.get_bool("new_decoder_architecture", false);
  if (new_arch) {
    s.num_kv_heads = c.get_int_any({"num_kv_heads", "n_head_kv"});
  } else {
    s.num_kv_heads = c.get_bool("multi_query", true) ? 1 : s.num_heads;
  }
  s.parallel_block = c.get_bool("parallel_attn", true) || new_arch;
  // transformers: new-architecture models use two norms unless num_ln_in_parallel_attn says 1.
  s.parallel_two_norms = s.parallel_block && new_arch && c.get_int("num_ln_in_parallel_attn", 2) == 2;
  s.qkv_bias = s.out_bias = s.mlp_bias = c.get_bool("bias", false);
  if (c.get_bool("alibi", false)) {
    s.positions = PositionKind::alibi;
    s.alibi_scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  }
  s.tied_embeddings = c.get_bool("tie_word_embeddings", true);
  return s;
}

DecoderLayout falcon_layout(const ModelSpec& s) {
  const bool multi_query = s.num_kv_heads == 1 && s.num_heads > 1;
  return {.embed = "transformer.word_embeddings",
          .final_norm = "transformer.ln_f",
          .layer_prefix = "transformer.h.",
          .attn_norm = s.parallel_two_norms ? "ln_attn" : "input_layernorm",
          .mlp_norm = s.parallel_two_norms ? "ln_mlp" : "post_attention_layernorm",
          .qkv_storage = multi_query ? QkvStorage::fused_flat : QkvStorage::fused_grouped,
          .qkv_fused = "self_attention.query_key_value",
          .o = "self_attention.dense",
          .up = "mlp.dense_h_to_4h",
          .down = "mlp.dense_4h_to_h"};
}

}  // namespace

void register_falcon(Registry& registry) {
  registry.add({"falcon",
                {"FalconForCausalLM", "RWForCausalLM"},
                {"falcon", "RefinedWeb", "RefinedWebModel"},
                falcon_spec,
                falcon_layout});
}

}  // namespace kiln::models
