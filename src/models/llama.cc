// LLaMA 2/3, Mistral, Qwen2 and InternLM (v1): one HF layout, differing only in
// which projections carry biases and where a sliding window applies.
#include <algorithm>

#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

// Qwen2 slides its window only in layers from max_window_layers on (or as
// layer_types lists them), as transformers' Qwen2Config decides.
void qwen2_window(const checkpoint::HfConfig& config, ModelSpec& s) {
  s.sliding_window = config.get_int("sliding_window", 0);
  const auto& types = config.raw().value("layer_types", nlohmann::json());
  const int64_t first = config.get_int("max_window_layers", 0);
  for (int64_t i = 0; i < s.num_layers; ++i) {
    const bool listed = types.is_array() && static_cast<int64_t>(types.size()) == s.num_layers;
    s.sliding_layers.push_back(listed ? types[static_cast<std::size_t>(i)] == "sliding_attention" : i >= first);
  }
  const auto sliding = std::count(s.sliding_layers.begin(), s.sliding_layers.end(), true);
  if (sliding == 0) s.sliding_window = 0;
  if (sliding == 0 || sliding == s.num_layers) s.sliding_layers.clear();
}

ModelSpec llama_family_spec(const checkpoint::HfConfig& config) {
  ModelSpec s = llama_spec(config);
  const std::string type = config.model_type();
  s.family = type.empty() ? "llama" : type;
  if (type == "qwen2") {
    s.qkv_bias = true;
    if (config.get_bool("use_sliding_window", false)) qwen2_window(config, s);
  } else if (type == "internlm") {
    s.qkv_bias = s.out_bias = config.get_bool("bias", true);
  } else {
    s.qkv_bias = s.out_bias = config.get_bool("attention_bias", false);
    s.sliding_window = config.get_int("sliding_window", 0);
  }
  return s;
}

}  // namespace

void register_llama(Registry& registry) {
  registry.add({"llama",
                {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "InternLMForCausalLM"},
                {"llama", "mistral", "qwen2", "internlm"},
                llama_family_spec,
                [](const ModelSpec&) { return DecoderLayout{}; },
                {"rotary_emb.inv_freq"}});
}

}  // namespace kiln::models
