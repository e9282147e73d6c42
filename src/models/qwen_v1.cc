// Qwen (v1, QWenLMHeadModel): fused c_attn [q; k; v] with bias, w2 is the gate
// and w1 the up projection, and config's intermediate_size counts both halves.
#include "models/decoder_layout.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

class QwenV1Adapter final : public Adapter {
 public:
  std::string_view name() const override { return "qwen"; }
  std::vector<std::string_view> architectures() const override { return {"QWenLMHeadModel"}; }
  std::vector<std::string_view> model_types() const override { return {"qwen"}; }

  ModelSpec spec(const checkpoint::HfConfig& c) const override {
    ModelSpec s;
    s.family = "qwen";
    s.hf_architecture = "QWenLMHeadModel";
    s.vocab_size = c.get_int("vocab_size");
    s.hidden_size = c.get_int("hidden_size");
    s.num_layers = c.get_int("num_hidden_layers");
    s.num_heads = s.num_kv_heads = c.get_int("num_attention_heads");
    s.head_dim = c.get_int("kv_channels", s.hidden_size / s.num_heads);
    s.intermediate_size = c.get_int("intermediate_size") / 2;
    // Dynamic NTK and log-n attention only change positions past seq_length, so
    // the engine is exact up to there and refuses longer inputs.
    s.max_positions = c.get_int("seq_length", c.get_int("max_position_embeddings", 0));
    s.norm_eps = c.get_double("layer_norm_epsilon", 1e-6);
    s.qkv_bias = true;
    s.out_bias = !c.get_bool("no_bias", true);
    s.rope = rope_from_config(c, s.head_dim, c.get_double("rotary_emb_base", 10000.0));
    s.rope.rotary_dim = static_cast<int64_t>(s.head_dim * c.get_double("rotary_pct", 1.0));
    s.tied_embeddings = c.get_bool("tie_word_embeddings", false);
    s.eos_token_ids = c.eos_token_ids();
    s.bos_token_id = c.bos_token_id();
    return s;
  }

  std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const override {
    static const DecoderLayout kNames{.embed = "transformer.wte",
                                      .final_norm = "transformer.ln_f",
                                      .layer_prefix = "transformer.h.",
                                      .attn_norm = "ln_1",
                                      .mlp_norm = "ln_2",
                                      .qkv_storage = QkvStorage::fused_flat,
                                      .qkv_fused = "attn.c_attn",
                                      .o = "attn.c_proj",
                                      .gate = "mlp.w2",
                                      .up = "mlp.w1",
                                      .down = "mlp.c_proj"};
    return decoder_tensors(spec, weights, kNames);
  }

  bool ignorable(std::string_view name) const override { return name.ends_with("rotary_emb.inv_freq"); }
};

}  // namespace

void register_qwen_v1(Registry& registry) { registry.add(std::make_unique<QwenV1Adapter>()); }

}  // namespace kiln::models
