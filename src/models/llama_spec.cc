#include "models/llama_spec.h"

#include "core/error.h"
#include "models/decoder_layout.h"

namespace kiln::models {

using checkpoint::HfConfig;

ModelSpec llama_spec(const HfConfig& config) {
  ModelSpec s;
  const auto archs = config.architectures();
  s.hf_architecture = archs.empty() ? config.model_type() : archs[0];
  s.vocab_size = config.get_int("vocab_size");
  s.hidden_size = config.get_int("hidden_size");
  s.num_layers = config.get_int("num_hidden_layers");
  s.num_heads = config.get_int("num_attention_heads");
  s.num_kv_heads = config.get_int("num_key_value_heads", s.num_heads);
  if (s.num_heads <= 0 || s.hidden_size <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0) {
    throw_error(config.file().string(), ": num_attention_heads ", s.num_heads, " must be a positive multiple of ",
                "num_key_value_heads ", s.num_kv_heads);
  }
  s.head_dim = config.get_int("head_dim", s.hidden_size / s.num_heads);
  s.intermediate_size = config.get_int("intermediate_size");
  s.max_positions = config.get_int("max_position_embeddings", 0);
  s.norm = NormKind::rms;
  s.norm_eps = config.get_double("rms_norm_eps", 1e-6);
  const std::string act = config.get_string("hidden_act", "silu");
  if (act != "silu" && act != "swish") {
    throw_error(config.file().string(), ": hidden_act '", act, "' is not supported for this family (silu)");
  }
  s.activation = Activation::silu;
  s.gated_mlp = true;
  if (config.get_bool("mlp_bias", false)) {
    throw_error(config.file().string(), ": mlp_bias true is not supported yet");
  }
  s.positions = PositionKind::rope;
  s.rope = rope_from_config(config, s.head_dim);
  s.tied_embeddings = config.get_bool("tie_word_embeddings", false);
  s.eos_token_ids = config.eos_token_ids();
  s.bos_token_id = config.bos_token_id();
  return s;
}

}  // namespace kiln::models
