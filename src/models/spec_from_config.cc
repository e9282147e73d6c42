#include "models/spec_from_config.h"

#include "core/error.h"

namespace kiln::models {

using checkpoint::HfConfig;

ModelSpec common_spec(const HfConfig& c) {
  ModelSpec s;
  const auto archs = c.architectures();
  s.hf_architecture = archs.empty() ? c.model_type() : archs[0];
  s.vocab_size = c.get_int_any({"padded_vocab_size", "vocab_size"});
  s.hidden_size = c.get_int_any({"hidden_size", "n_embd", "n_embed"});
  s.num_layers = c.get_int_any({"num_hidden_layers", "n_layer", "num_layers"});
  s.num_heads = c.get_int_any({"num_attention_heads", "n_head"});
  s.num_kv_heads = c.find_int_any({"num_key_value_heads"}).value_or(s.num_heads);
  if (s.num_heads <= 0 || s.hidden_size <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0) {
    throw_error(c.file().string(), ": the number of attention heads (", s.num_heads,
                ") must be a positive multiple of the number of KV heads (", s.num_kv_heads, ")");
  }
  s.head_dim = c.find_int_any({"head_dim", "kv_channels"}).value_or(s.hidden_size / s.num_heads);
  s.intermediate_size = c.find_int_any({"intermediate_size", "n_inner", "ffn_hidden_size"}).value_or(4 * s.hidden_size);
  s.max_positions = c.find_int_any({"max_position_embeddings", "n_positions", "seq_length"}).value_or(0);
  s.norm_eps =
      c.find_double_any({"rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "layernorm_epsilon"}).value_or(1e-5);
  s.positions = PositionKind::rope;
  s.rope = rope_from_config(c, s.head_dim);
  s.tied_embeddings = c.get_bool("tie_word_embeddings", false);
  s.eos_token_ids = c.eos_token_ids();
  s.bos_token_id = c.bos_token_id();
  return s;
}

ModelSpec llama_spec(const HfConfig& c) {
  ModelSpec s = common_spec(c);
  s.norm = NormKind::rms;
  s.activation = activation_from(c, "hidden_act", "silu");
  s.gated_mlp = true;
  if (c.get_bool("mlp_bias", false)) throw_error(c.file().string(), ": mlp_bias true is not supported yet");
  return s;
}

void use_gpt_style_block(ModelSpec& s, Activation act) {
  s.norm = NormKind::layer;
  s.norm_bias = true;
  s.gated_mlp = false;
  s.mlp_bias = true;
  s.activation = act;
}

Activation activation_from(const HfConfig& c, const std::string& key, const std::string& fallback) {
  const std::string name = c.get_string(key, fallback);
  if (name == "silu" || name == "swish") return Activation::silu;
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::gelu_tanh;
  throw_error(c.file().string(), ": ", key, " '", name,
              "' is not supported (silu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast)");
}

RopeSpec rope_from_config(const HfConfig& config, int64_t rotary_dim, double default_theta) {
  RopeSpec rope;
  rope.rotary_dim = rotary_dim;
  rope.theta = config.rope_theta(default_theta);
  if (auto name = config.torch_dtype()) {
    DType t;
    if (parse_dtype(*name, &t) && (t == DType::f16 || t == DType::bf16)) rope.frequency_dtype = t;
  }
  const auto scaling = config.rope_scaling();
  if (scaling.is_null()) return rope;
  const std::string type = scaling.value("rope_type", "default");
  auto number = [&](const char* key, double fallback) {
    return scaling.contains(key) && scaling[key].is_number() ? scaling[key].get<double>() : fallback;
  };
  rope.factor = number("factor", 1.0);
  if (type == "linear") {
    rope.scaling = RopeScaling::linear;
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::llama3;
    rope.low_freq_factor = number("low_freq_factor", 1.0);
    rope.high_freq_factor = number("high_freq_factor", 4.0);
    const double original = number("original_max_position_embeddings", 8192);
    if (!(original >= 1 && original <= 0x1p40)) {
      throw_error(config.file().string(), ": rope_scaling original_max_position_embeddings ", original,
                  " is out of range");
    }
    rope.original_max_positions = static_cast<int64_t>(original);
  } else {
    throw_error(config.file().string(), ": rope scaling type '", type,
                "' is not supported yet (supported: linear, llama3)");
  }
  return rope;
}

int64_t fraction_of(int64_t dim, double fraction, const checkpoint::HfConfig& config, const char* key) {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw_error(config.file().string(), ": '", key, "' must be between 0 and 1, got ", fraction);
  }
  return static_cast<int64_t>(static_cast<double>(dim) * fraction);
}

}  // namespace kiln::models
