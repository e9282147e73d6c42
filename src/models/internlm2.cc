// InternLM2: Llama with new names and wqkv grouped per KV head [q_0..q_{g-1}, k, v].
#include "models/decoder_layout.h"
#include "models/llama_spec.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

class InternLM2Adapter final : public Adapter {
 public:
  std::string_view name() const override { return "internlm2"; }
  std::vector<std::string_view> architectures() const override { return {"InternLM2ForCausalLM"}; }
  std::vector<std::string_view> model_types() const override { return {"internlm2"}; }

  ModelSpec spec(const checkpoint::HfConfig& config) const override {
    ModelSpec s = llama_spec(config);
    s.family = "internlm2";
    // configuration_internlm2.py defaults bias to true (wqkv and wo biases).
    s.qkv_bias = s.out_bias = config.get_bool("bias", true);
    return s;
  }

  std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const override {
    static const DecoderLayout kNames{.embed = "model.tok_embeddings",
                                      .lm_head = "output",
                                      .attn_norm = "attention_norm",
                                      .mlp_norm = "ffn_norm",
                                      .qkv_storage = QkvStorage::fused_grouped,
                                      .qkv_fused = "attention.wqkv",
                                      .o = "attention.wo",
                                      .gate = "feed_forward.w1",
                                      .up = "feed_forward.w3",
                                      .down = "feed_forward.w2"};
    return decoder_tensors(spec, weights, kNames);
  }
};

}  // namespace

void register_internlm2(Registry& registry) { registry.add(std::make_unique<InternLM2Adapter>()); }

}  // namespace kiln::models
