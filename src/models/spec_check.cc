#include "models/spec_check.h"

#include <map>
#include <string>

#include "core/error.h"
#include "core/model_spec_check.h"

namespace kiln::models {
namespace {

// config.json's usual spelling of each ModelSpec field (families with other
// spellings read them into the same fields; the canonical name is kept too,
// so a message is clear whichever the checkpoint used).
std::string config_key(std::string_view field) {
  static const std::map<std::string_view, std::string_view> keys = {
      {"vocab_size", "vocab_size"},
      {"hidden_size", "hidden_size"},
      {"num_layers", "num_hidden_layers"},
      {"num_heads", "num_attention_heads"},
      {"num_kv_heads", "num_key_value_heads"},
      {"head_dim", "head_dim"},
      {"intermediate_size", "intermediate_size"},
      {"max_positions", "max_position_embeddings"},
      {"norm_eps", "rms_norm_eps / layer_norm_epsilon"},
      {"rope.rotary_dim", "rotary dimensions (head_dim x partial_rotary_factor, or rotary_dim)"},
      {"rope.theta", "rope_theta"},
      {"rope.factor", "rope_scaling.factor"},
      {"rope.low_freq_factor", "rope_scaling.low_freq_factor"},
      {"rope.high_freq_factor", "rope_scaling.high_freq_factor"},
      {"rope.original_max_positions", "rope_scaling.original_max_position_embeddings"},
      {"sliding_window", "sliding_window"},
      {"num_experts", "num_local_experts"},
      {"experts_per_token", "num_experts_per_tok"},
  };
  const auto found = keys.find(field);
  return found == keys.end() ? std::string(field) : std::string(found->second);
}

}  // namespace

void check_config_spec(const ModelSpec& spec, const checkpoint::HfConfig& config,
                       const checkpoint::WeightSet& weights) {
  const std::string where = config.file().string();
  check_model_spec(spec, where, config_key);
  // Every layer holds at least one tensor, every expert two.
  const auto tensors = static_cast<int64_t>(weights.names().size());
  if (spec.num_layers > tensors) {
    throw_error(where, ": ", config_key("num_layers"), " (", spec.num_layers, ") is more layers than the checkpoint's ",
                tensors, " tensors can hold");
  }
  if (spec.num_experts > 0 && 2 * spec.num_experts * spec.num_layers > tensors) {
    throw_error(where, ": ", config_key("num_experts"), " (", spec.num_experts, ") x ", config_key("num_layers"), " (",
                spec.num_layers, ") is more experts than the checkpoint's ", tensors, " tensors can hold");
  }
}

}  // namespace kiln::models
