// ModelSpec: the one canonical decoder every supported family is expressed in.
// Adapters (models layer) fill it from a HuggingFace config; the engine stores
// it; the runtime executes it. It lives in core, as plain data, because all
// three layers need it and none of them may depend on another for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace kiln {

enum class NormKind { rms, layer };
enum class Activation { silu, gelu, gelu_tanh };
enum class PositionKind { rope, alibi, learned, none };
// neox: rotate halves (x[i], x[i + d/2]); interleaved: rotate pairs (x[2i], x[2i+1]).
enum class RopeStyle { neox, interleaved };
enum class RopeScaling { none, linear, dynamic, llama3, yarn };

struct RopeSpec {
  RopeStyle style = RopeStyle::neox;
  int64_t rotary_dim = 0;  // dims of each head that rotate (the rest pass through)
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::none;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_positions = 0;
  // The dtype HF holds inv_freq in: a model cast with .to(fp16/bf16) rounds
  // its rotary frequencies too, and the checkpoint's dtype says what HF runs in.
  DType frequency_dtype = DType::f32;
};

struct ModelSpec {
  std::string family;           // adapter name: "llama", "qwen2", "baichuan", ...
  std::string hf_architecture;  // e.g. "LlamaForCausalLM"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;  // per expert for MoE
  int64_t max_positions = 0;      // 0 when the checkpoint sets none

  NormKind norm = NormKind::rms;
  double norm_eps = 1e-6;
  bool norm_bias = false;

  // Sequential (Llama): x += attn(norm1(x)); x += mlp(norm2(x)).
  // Parallel (GPT-J, Falcon, Phi-2): x += attn(norm1(x)) + mlp(norm1 or norm2(x)).
  bool parallel_block = false;
  bool parallel_two_norms = false;

  bool qkv_bias = false;
  bool out_bias = false;
  PositionKind positions = PositionKind::rope;
  // ALiBi bias = slope * key position * alibi_scale (Falcon scales it with the scores by 1/sqrt(head_dim)).
  double alibi_scale = 1.0;
  RopeSpec rope;
  int64_t sliding_window = 0;        // 0: full attention
  std::vector<bool> sliding_layers;  // which layers use the window; empty: all of them

  Activation activation = Activation::silu;
  bool gated_mlp = true;  // gate_up fused [gate; up], act(gate) * up
  bool mlp_bias = false;
  int64_t num_experts = 0;  // 0: dense MLP
  int64_t experts_per_token = 0;
  bool moe_normalize_topk = true;  // renormalize the chosen experts' weights to sum to 1 (Mixtral)

  bool tied_embeddings = false;  // lm_head reuses embed.weight
  bool lm_head_bias = false;

  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  int64_t qkv_rows() const { return q_size() + 2 * kv_size(); }
  // KV heads each tensor-parallel rank holds: a share, or one replicated head.
  int64_t kv_heads_per_rank(int64_t tp) const { return num_kv_heads >= tp ? num_kv_heads / tp : 1; }
  int64_t window_of(int64_t layer) const {
    const bool sliding = sliding_layers.empty() || sliding_layers.at(static_cast<std::size_t>(layer));
    return sliding ? sliding_window : 0;
  }
};

std::string_view norm_kind_name(NormKind k);
std::string_view activation_name(Activation a);
std::string_view position_kind_name(PositionKind p);
std::string_view rope_style_name(RopeStyle s);
std::string_view rope_scaling_name(RopeScaling s);

// Canonical tensor names: the contract between adapters, compiler and runtime.
namespace tensor_names {
inline constexpr const char* kEmbed = "embed.weight";
inline constexpr const char* kPosEmbed = "pos_embed.weight";
inline constexpr const char* kFinalNormWeight = "final_norm.weight";
inline constexpr const char* kFinalNormBias = "final_norm.bias";
inline constexpr const char* kLmHead = "lm_head.weight";
inline constexpr const char* kLmHeadBias = "lm_head.bias";
// Per layer: "layers.<i>." + one of these.
inline constexpr const char* kAttnNormWeight = "attn_norm.weight";
inline constexpr const char* kAttnNormBias = "attn_norm.bias";
inline constexpr const char* kMlpNormWeight = "mlp_norm.weight";
inline constexpr const char* kMlpNormBias = "mlp_norm.bias";
inline constexpr const char* kQkvWeight = "attn.qkv.weight";  // [q; k; v] rows
inline constexpr const char* kQkvBias = "attn.qkv.bias";
inline constexpr const char* kOutWeight = "attn.out.weight";
inline constexpr const char* kOutBias = "attn.out.bias";
inline constexpr const char* kGateUpWeight = "mlp.gate_up.weight";  // [gate; up] rows
inline constexpr const char* kUpWeight = "mlp.up.weight";           // ungated MLPs
inline constexpr const char* kUpBias = "mlp.up.bias";
inline constexpr const char* kDownWeight = "mlp.down.weight";
inline constexpr const char* kDownBias = "mlp.down.bias";
inline constexpr const char* kRouterWeight = "moe.router.weight";
// Per expert: "layers.<i>.moe.experts.<j>." + one of these.
inline constexpr const char* kExpertGateUpWeight = "gate_up.weight";  // [gate; up] rows
inline constexpr const char* kExpertDownWeight = "down.weight";
std::string layer(int64_t index, const char* suffix);
std::string expert(int64_t layer_index, int64_t expert_index, const char* suffix);
// The matrices a quantized engine stores in 8 bits: the attention and MLP
// projections (experts' too). Embeddings, the LM head, norms and routers keep
// the engine's dtype or fp32.
bool is_projection(std::string_view name);
// The per-output-channel scales of a quantized projection `name`: "<name>_scale", fp32 [rows].
std::string scale_of(std::string_view name);
}  // namespace tensor_names

}  // namespace kiln
