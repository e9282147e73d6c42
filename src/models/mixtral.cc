// Mixtral: Llama attention with a sparse mixture of SwiGLU experts (router
// softmax, top-k, renormalized weights; w1 = gate, w3 = up, w2 = down).
#include "models/registry.h"
#include "models/spec_from_config.h"

namespace kiln::models {
namespace {

ModelSpec mixtral_spec(const checkpoint::HfConfig& c) {
  ModelSpec s = llama_spec(c);
  s.num_experts = c.get_int("num_local_experts");
  s.experts_per_token = c.get_int("num_experts_per_tok");
  s.moe_normalize_topk = true;
  s.sliding_window = c.get_int("sliding_window", 0);
  return s;
}

DecoderLayout mixtral_layout(const ModelSpec&) {
  return {.router = "block_sparse_moe.gate", .experts = "block_sparse_moe.experts."};
}

}  // namespace

void register_mixtral(Registry& registry) {
  registry.add({"mixtral", {"MixtralForCausalLM"}, {"mixtral"}, mixtral_spec, mixtral_layout});
}

}  // namespace kiln::models
