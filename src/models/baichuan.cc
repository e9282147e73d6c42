// Baichuan and Baichuan2: Llama with q, k, v packed in W_pack. The 7B models use
// RoPE; the 13B models use ALiBi and are told apart by the absence of
// max_position_embeddings. Baichuan2 L2-normalizes lm_head rows (NormHead),
// which the build applies once to the stored weights.
#include "core/error.h"
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

constexpr int64_t kBaichuan2Vocab = 125696;

ModelSpec baichuan_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = llama_spec(c);
  // Baichuan2 is chosen by `baichuan_version: 2` (in config.json or through
  // --hf-override baichuan_version=2) or by Baichuan2's vocabulary size.
  const bool v2 = c.get_int("baichuan_version", 0) == 2 || s.vocab_size == kBaichuan2Vocab;
  s.family = v2 ? "baichuan2" : "baichuan";
  s.max_positions = c.get_int("max_position_embeddings", c.get_int("model_max_length", 0));
  // Overridable with --hf-override position_embedding=alibi|rope.
  const std::string positions = c.get_string("position_embedding", c.has("max_position_embeddings") ? "rope" : "alibi");
  if (positions == "alibi") {
    s.positions = PositionKind::alibi;
  } else if (positions != "rope") {
    throw_error(c.file().string(), ": position_embedding '", positions, "' must be rope or alibi");
  }
  return s;
}

DecoderLayout baichuan_layout(const ModelSpec& spec) {
  return {.qkv_storage = QkvStorage::fused_flat,
          .qkv_fused = "self_attn.W_pack",
          .normalize_lm_head_rows = spec.family == "baichuan2"};
}

}  // namespace

void register_baichuan(Registry& registry) {
  registry.add(
      {"baichuan", {"BaiChuanForCausalLM", "BaichuanForCausalLM"}, {"baichuan"}, baichuan_spec, baichuan_layout});
}

}  // namespace kiln::models
