// Baichuan and Baichuan2: Llama with q, k, v packed in W_pack. The 7B models use
// RoPE; the 13B models use ALiBi and are told apart by the absence of
// max_position_embeddings. Baichuan2 L2-normalizes lm_head rows (NormHead),
// which the build applies once to the stored weights.
#include "core/error.h"
#include "models/decoder_layout.h"
#include "models/llama_spec.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

constexpr int64_t kBaichuan2Vocab = 125696;

class BaichuanAdapter final : public Adapter {
 public:
  std::string_view name() const override { return "baichuan"; }
  std::vector<std::string_view> architectures() const override {
    return {"BaiChuanForCausalLM", "BaichuanForCausalLM"};
  }
  std::vector<std::string_view> model_types() const override { return {"baichuan"}; }

  ModelSpec spec(const checkpoint::HfConfig& config) const override {
    ModelSpec s = llama_spec(config);
    // Baichuan2 is chosen by `baichuan_version: 2` (in config.json or through
    // --hf-override baichuan_version=2) or by Baichuan2's vocabulary size.
    const bool v2 = config.get_int("baichuan_version", 0) == 2 || s.vocab_size == kBaichuan2Vocab;
    s.family = v2 ? "baichuan2" : "baichuan";
    s.max_positions = config.get_int("max_position_embeddings", config.get_int("model_max_length", 0));
    // Overridable with --hf-override position_embedding=alibi|rope.
    const std::string positions =
        config.get_string("position_embedding", config.has("max_position_embeddings") ? "rope" : "alibi");
    if (positions == "alibi") {
      s.positions = PositionKind::alibi;
    } else if (positions != "rope") {
      throw_error(config.file().string(), ": position_embedding '", positions, "' must be rope or alibi");
    }
    return s;
  }

  std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const override {
    const DecoderLayout names{.qkv_storage = QkvStorage::fused_flat,
                              .qkv_fused = "self_attn.W_pack",
                              .normalize_lm_head_rows = spec.family == "baichuan2"};
    return decoder_tensors(spec, weights, names);
  }
};

}  // namespace

void register_baichuan(Registry& registry) { registry.add(std::make_unique<BaichuanAdapter>()); }

}  // namespace kiln::models
