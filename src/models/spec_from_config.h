// Reading a ModelSpec from config.json: the fields every family spells one of
// a few ways (read once here), and the presets families share. Each family's
// spec function starts from these and sets only what it does differently.
#pragma once

#include <string>

#include "checkpoint/hf_config.h"
#include "core/model_spec.h"

namespace kiln::models {

// Sizes, eps, context, tying and special tokens, whichever spelling the config
// uses (hidden_size / n_embd / n_embed, num_hidden_layers / n_layer /
// num_layers, ...). Positions default to RoPE from rope_theta / rope_scaling.
ModelSpec common_spec(const checkpoint::HfConfig& config);

// LLaMA-style: RMSNorm, SiLU-gated MLP (hidden_act), RoPE over whole heads.
ModelSpec llama_spec(const checkpoint::HfConfig& config);

// GPT-style blocks: LayerNorm with bias and a plain MLP with biases and `act`.
void use_gpt_style_block(ModelSpec& spec, Activation act);

// RoPE settings from rope_theta / rope_scaling (either transformers style);
// frequencies held in the checkpoint's dtype, as HF holds them.
RopeSpec rope_from_config(const checkpoint::HfConfig& config, int64_t rotary_dim, double default_theta = 10000.0);

// An activation by its HF name (silu, gelu, gelu_new, gelu_pytorch_tanh, ...)
// read from `key`; the error names the key and the supported names.
// floor(dim * fraction), for a config's partial rotary factor `key`; throws kiln::Error naming it unless
// 0 <= fraction <= 1 (a fraction outside int64's reach would make the conversion undefined).
int64_t fraction_of(int64_t dim, double fraction, const checkpoint::HfConfig& config, const char* key);

Activation activation_from(const checkpoint::HfConfig& config, const std::string& key, const std::string& fallback);

}  // namespace kiln::models
