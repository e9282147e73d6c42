// LLaMA 2/3, Mistral, Qwen2 and InternLM (v1): one HF layout, differing only in
// which projections carry biases and whether a sliding window applies.
#include <algorithm>

#include "models/decoder_layout.h"
#include "models/llama_spec.h"
#include "models/registry.h"

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

class LlamaAdapter final : public Adapter {
 public:
  std::string_view name() const override { return "llama"; }
  std::vector<std::string_view> architectures() const override {
    return {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "InternLMForCausalLM"};
  }
  std::vector<std::string_view> model_types() const override { return {"llama", "mistral", "qwen2", "internlm"}; }

  ModelSpec spec(const checkpoint::HfConfig& config) const override {
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

  std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const override {
    return decoder_tensors(spec, weights, DecoderLayout{});
  }

  bool ignorable(std::string_view name) const override { return name.ends_with("rotary_emb.inv_freq"); }
};

}  // namespace

void register_llama(Registry& registry) { registry.add(std::make_unique<LlamaAdapter>()); }

}  // namespace kiln::models
