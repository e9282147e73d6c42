// Phi-2 (PhiForCausalLM): parallel attention + MLP from one LayerNorm, partial
// rotary (partial_rotary_factor of each head, NeoX style), biases on every
// projection, a plain gelu_new MLP (fc1, fc2), final LayerNorm, LM head bias.
#include "core/error.h"
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec phi_spec(const checkpoint::HfConfig& c) {
  if (c.get_bool("qk_layernorm", false)) throw_error(c.file().string(), ": qk_layernorm is not supported yet");
  ModelSpec s = common_spec(c);
  use_gpt_style_block(s, activation_from(c, "hidden_act", "gelu_new"));
  s.parallel_block = true;
  s.qkv_bias = s.out_bias = s.lm_head_bias = true;
  // partial_rotary_factor sits at the top level (4.x) or in rope_parameters
  // (5.x); PhiConfig defaults it to 0.5.
  double partial = c.get_double("partial_rotary_factor", 0);
  const auto& params = c.raw().value("rope_parameters", nlohmann::json());
  if (partial == 0 && params.is_object() && params.contains("partial_rotary_factor")) {
    const auto& factor = params["partial_rotary_factor"];
    if (!factor.is_number()) throw_error(c.file().string(), ": rope_parameters.partial_rotary_factor is not a number");
    partial = factor.get<double>();
  }
  if (partial == 0) partial = 0.5;
  s.rope.rotary_dim = fraction_of(s.head_dim, partial, c, "partial_rotary_factor");
  return s;
}

DecoderLayout phi_layout(const ModelSpec&) {
  return {.final_norm = "model.final_layernorm", .o = "self_attn.dense", .up = "mlp.fc1", .down = "mlp.fc2"};
}

}  // namespace

void register_phi(Registry& registry) { registry.add({"phi", {"PhiForCausalLM"}, {"phi"}, phi_spec, phi_layout}); }

}  // namespace kiln::models
