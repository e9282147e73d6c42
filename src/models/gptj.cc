// GPT-J: parallel attention + MLP from one LayerNorm, interleaved ("rotate
// every two") rotary on the first rotary_dim dims, unbiased q/k/v/out, a plain
// gelu_new MLP with biases, an LM head with bias.
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec gptj_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = common_spec(c);
  use_gpt_style_block(s, activation_from(c, "activation_function", "gelu_new"));
  s.parallel_block = true;
  s.rope = rope_from_config(c, c.get_int("rotary_dim", s.head_dim));
  s.rope.style = RopeStyle::interleaved;
  s.lm_head_bias = true;
  return s;
}

DecoderLayout gptj_layout(const ModelSpec&) {
  return {.embed = "transformer.wte",
          .final_norm = "transformer.ln_f",
          .layer_prefix = "transformer.h.",
          .attn_norm = "ln_1",
          .q = "attn.q_proj",
          .k = "attn.k_proj",
          .v = "attn.v_proj",
          .o = "attn.out_proj",
          .up = "mlp.fc_in",
          .down = "mlp.fc_out"};
}

}  // namespace

void register_gptj(Registry& registry) {
  registry.add({"gptj", {"GPTJForCausalLM"}, {"gptj"}, gptj_spec, gptj_layout, {".attn.bias", ".attn.masked_bias"}});
}

}  // namespace kiln::models
