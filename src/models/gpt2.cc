// GPT-2 and its descendant GPTBigCode (SantaCoder, StarCoder): LayerNorm with
// bias, learned positions, fused c_attn [q; k; v] with bias, a plain GELU MLP
// (c_fc, c_proj) with biases, tied LM head. GPT-2 stores its projections as
// Conv1D ([in, out]); GPTBigCode as Linear, with one shared K/V head when
// multi_query (and [q, k, v] interleaved per head when not).
#include "core/error.h"
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec gpt2_spec(const checkpoint::HfConfig& c) {
  if (c.get_bool("scale_attn_by_inverse_layer_idx", false)) {
    throw_error(c.file().string(), ": scale_attn_by_inverse_layer_idx is not supported");
  }
  if (!c.get_bool("scale_attn_weights", true)) {
    throw_error(c.file().string(), ": scale_attn_weights false (unscaled attention scores) is not supported");
  }
  ModelSpec s = common_spec(c);
  const bool bigcode = c.model_type() == "gpt_bigcode";
  s.family = bigcode ? "gpt_bigcode" : "gpt2";
  use_gpt_style_block(s, activation_from(c, "activation_function", "gelu_new"));
  // GPTBigCodeAttention: one KV head when multi_query, else one per query head.
  if (bigcode) s.num_kv_heads = c.get_bool("multi_query", true) ? 1 : s.num_heads;
  s.qkv_bias = s.out_bias = true;
  s.positions = PositionKind::learned;
  s.tied_embeddings = c.get_bool("tie_word_embeddings", true);
  return s;
}

DecoderLayout gpt2_layout(const ModelSpec& s) {
  const bool per_head = s.family == "gpt_bigcode" && s.num_kv_heads == s.num_heads;
  return {.embed = "transformer.wte",
          .pos_embed = "transformer.wpe",
          .final_norm = "transformer.ln_f",
          .layer_prefix = "transformer.h.",
          .attn_norm = "ln_1",
          .mlp_norm = "ln_2",
          .qkv_storage = per_head ? QkvStorage::fused_grouped : QkvStorage::fused_flat,
          .qkv_fused = "attn.c_attn",
          .o = "attn.c_proj",
          .up = "mlp.c_fc",
          .down = "mlp.c_proj",
          .transposed = s.family == "gpt2"};
}

}  // namespace

void register_gpt2(Registry& registry) {
  registry.add({"gpt2",
                {"GPT2LMHeadModel", "GPTBigCodeForCausalLM"},
                {"gpt2", "gpt_bigcode"},
                gpt2_spec,
                gpt2_layout,
                {".attn.bias", ".attn.masked_bias"}});
}

}  // namespace kiln::models
