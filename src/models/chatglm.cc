// ChatGLM2-6B / ChatGLM3-6B (ChatGLMModel): RMSNorm, multi-query groups
// (multi_query_group_num) in a biased fused query_key_value [q; k; v], rotary
// on the first half of each head in interleaved pairs with base 10000 *
// rope_ratio, SwiGLU packed as [gate; up] in dense_h_to_4h.
#include "core/error.h"
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec chatglm_spec(const checkpoint::HfConfig& c) {
  if (c.get_bool("apply_residual_connection_post_layernorm", false) || !c.get_bool("post_layer_norm", true) ||
      c.get_bool("add_bias_linear", false) || !c.get_bool("rmsnorm", true)) {
    throw_error(c.file().string(), ": this ChatGLM variant (apply_residual_connection_post_layernorm, ",
                "post_layer_norm false, add_bias_linear or LayerNorm) is not supported");
  }
  ModelSpec s = llama_spec(c);
  if (c.get_bool("multi_query_attention", false)) s.num_kv_heads = c.get_int("multi_query_group_num");
  s.qkv_bias = c.get_bool("add_qkv_bias", false);
  s.rope = rope_from_config(c, s.head_dim / 2, 10000.0 * c.get_double("rope_ratio", 1.0));
  s.rope.style = RopeStyle::interleaved;
  return s;
}

DecoderLayout chatglm_layout(const ModelSpec&) {
  return {.embed = "transformer.embedding.word_embeddings",
          .final_norm = "transformer.encoder.final_layernorm",
          .lm_head = "transformer.output_layer",
          .layer_prefix = "transformer.encoder.layers.",
          .qkv_storage = QkvStorage::fused_flat,
          .qkv_fused = "self_attention.query_key_value",
          .o = "self_attention.dense",
          .gate_up_fused = "mlp.dense_h_to_4h",
          .down = "mlp.dense_4h_to_h"};
}

}  // namespace

void register_chatglm(Registry& registry) {
  registry.add({"chatglm",
                {"ChatGLMModel", "ChatGLMForConditionalGeneration"},
                {"chatglm"},
                chatglm_spec,
                chatglm_layout,
                {"rotary_pos_emb.inv_freq"}});
}

}  // namespace kiln::models
