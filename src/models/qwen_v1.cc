// Qwen (v1, QWenLMHeadModel): fused c_attn [q; k; v] with bias, w2 is the gate
// and w1 the up projection, and config's intermediate_size counts both halves.
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec qwen_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = llama_spec(c);
  s.intermediate_size /= 2;
  // Dynamic NTK and log-n attention only change positions past seq_length, so
  // the engine is exact up to there and refuses longer inputs.
  s.max_positions = c.get_int("seq_length", s.max_positions);
  s.qkv_bias = true;
  s.out_bias = !c.get_bool("no_bias", true);
  s.rope = rope_from_config(c, s.head_dim, c.get_double("rotary_emb_base", 10000.0));
  s.rope.rotary_dim = fraction_of(s.head_dim, c.get_double("rotary_pct", 1.0), c, "rotary_pct");
  return s;
}

DecoderLayout qwen_layout(const ModelSpec&) {
  return {.embed = "transformer.wte",
          .final_norm = "transformer.ln_f",
          .layer_prefix = "transformer.h.",
          .attn_norm = "ln_1",
          .mlp_norm = "ln_2",
          .qkv_storage = QkvStorage::fused_flat,
          .qkv_fused = "attn.c_attn",
          .o = "attn.c_proj",
          .gate = "mlp.w2",
          .up = "mlp.w1",
          .down = "mlp.c_proj"};
}

}  // namespace

void register_qwen_v1(Registry& registry) {
  registry.add({"qwen", {"QWenLMHeadModel"}, {"qwen"}, qwen_spec, qwen_layout, {"rotary_emb.inv_freq"}});
}

}  // namespace kiln::models
