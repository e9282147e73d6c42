// InternLM2: Llama with new names and wqkv grouped per KV head [q_0..q_{g-1}, k, v].
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec internlm2_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = llama_spec(c);
  // configuration_internlm2.py defaults bias to true (wqkv and wo biases).
  s.qkv_bias = s.out_bias = c.get_bool("bias", true);
  return s;
}

DecoderLayout internlm2_layout(const ModelSpec&) {
  return {.embed = "model.tok_embeddings",
          .lm_head = "output",
          .attn_norm = "attention_norm",
          .mlp_norm = "ffn_norm",
          .qkv_storage = QkvStorage::fused_grouped,
          .qkv_fused = "attention.wqkv",
          .o = "attention.wo",
          .gate = "feed_forward.w1",
          .up = "feed_forward.w3",
          .down = "feed_forward.w2"};
}

}  // namespace

void register_internlm2(Registry& registry) {
  registry.add({"internlm2", {"InternLM2ForCausalLM"}, {"internlm2"}, internlm2_spec, internlm2_layout});
}

}  // namespace kiln::models
