#include "engine/spec_json.h"

#include "core/error.h"
#include "engine/json_fields.h"

namespace kiln::engine {
namespace {

template <typename Enum, std::size_t N>
Enum enum_from(const nlohmann::json& j, const char* key, const std::array<Enum, N>& values,
               std::string_view (*name_of)(Enum)) {
  const std::string text = j.at(key).get<std::string>();
  for (Enum v : values) {
    if (name_of(v) == text) return v;
  }
  throw_error("engine.json: model.", key, " has unknown value '", text, "'");
}

constexpr std::array kNorms{NormKind::rms, NormKind::layer};
constexpr std::array kActivations{Activation::silu, Activation::gelu, Activation::gelu_tanh};
constexpr std::array kPositions{PositionKind::rope, PositionKind::alibi, PositionKind::learned, PositionKind::none};
constexpr std::array kRopeStyles{RopeStyle::neox, RopeStyle::interleaved};
constexpr std::array kRopeScalings{RopeScaling::none, RopeScaling::linear, RopeScaling::dynamic, RopeScaling::llama3,
                                   RopeScaling::yarn};

}  // namespace

nlohmann::json spec_to_json(const ModelSpec& s) {
  return {
      {"family", s.family},
      {"hf_architecture", s.hf_architecture},
      {"vocab_size", s.vocab_size},
      {"hidden_size", s.hidden_size},
      {"num_layers", s.num_layers},
      {"num_heads", s.num_heads},
      {"num_kv_heads", s.num_kv_heads},
      {"head_dim", s.head_dim},
      {"intermediate_size", s.intermediate_size},
      {"max_positions", s.max_positions},
      {"norm", norm_kind_name(s.norm)},
      {"norm_eps", s.norm_eps},
      {"norm_bias", s.norm_bias},
      {"parallel_block", s.parallel_block},
      {"parallel_two_norms", s.parallel_two_norms},
      {"qkv_bias", s.qkv_bias},
      {"out_bias", s.out_bias},
      {"positions", position_kind_name(s.positions)},
      {"rope",
       {{"style", rope_style_name(s.rope.style)},
        {"rotary_dim", s.rope.rotary_dim},
        {"theta", s.rope.theta},
        {"scaling", rope_scaling_name(s.rope.scaling)},
        {"factor", s.rope.factor},
        {"low_freq_factor", s.rope.low_freq_factor},
        {"high_freq_factor", s.rope.high_freq_factor},
        {"original_max_positions", s.rope.original_max_positions},
        {"frequency_dtype", dtype_name(s.rope.frequency_dtype)}}},
      {"alibi_scale", s.alibi_scale},
      {"sliding_window", s.sliding_window},
      {"sliding_layers", s.sliding_layers},
      {"activation", activation_name(s.activation)},
      {"gated_mlp", s.gated_mlp},
      {"mlp_bias", s.mlp_bias},
      {"num_experts", s.num_experts},
      {"experts_per_token", s.experts_per_token},
      {"moe_normalize_topk", s.moe_normalize_topk},
      {"tied_embeddings", s.tied_embeddings},
      {"lm_head_bias", s.lm_head_bias},
      {"eos_token_ids", s.eos_token_ids},
      {"bos_token_id", s.bos_token_id},
  };
}

ModelSpec spec_from_json(const nlohmann::json& j) {
  try {
    ModelSpec s;
    s.family = j.at("family").get<std::string>();
    s.hf_architecture = j.at("hf_architecture").get<std::string>();
    s.vocab_size = json_integer<int64_t>(j, "vocab_size", "model.");
    s.hidden_size = json_integer<int64_t>(j, "hidden_size", "model.");
    s.num_layers = json_integer<int64_t>(j, "num_layers", "model.");
    s.num_heads = json_integer<int64_t>(j, "num_heads", "model.");
    s.num_kv_heads = json_integer<int64_t>(j, "num_kv_heads", "model.");
    s.head_dim = json_integer<int64_t>(j, "head_dim", "model.");
    s.intermediate_size = json_integer<int64_t>(j, "intermediate_size", "model.");
    s.max_positions = json_integer<int64_t>(j, "max_positions", "model.");
    s.norm = enum_from(j, "norm", kNorms, norm_kind_name);
    s.norm_eps = json_finite(j, "norm_eps", "model.");
    s.norm_bias = j.at("norm_bias").get<bool>();
    s.parallel_block = j.at("parallel_block").get<bool>();
    s.parallel_two_norms = j.at("parallel_two_norms").get<bool>();
    s.qkv_bias = j.at("qkv_bias").get<bool>();
    s.out_bias = j.at("out_bias").get<bool>();
    s.positions = enum_from(j, "positions", kPositions, position_kind_name);
    const auto& r = j.at("rope");
    s.rope.style = enum_from(r, "style", kRopeStyles, rope_style_name);
    s.rope.rotary_dim = json_integer<int64_t>(r, "rotary_dim", "model.rope.");
    s.rope.theta = json_finite(r, "theta", "model.rope.");
    s.rope.scaling = enum_from(r, "scaling", kRopeScalings, rope_scaling_name);
    s.rope.factor = json_finite(r, "factor", "model.rope.");
    s.rope.low_freq_factor = json_finite(r, "low_freq_factor", "model.rope.");
    s.rope.high_freq_factor = json_finite(r, "high_freq_factor", "model.rope.");
    s.rope.original_max_positions = json_integer<int64_t>(r, "original_max_positions", "model.rope.");
    if (!parse_dtype(r.at("frequency_dtype").get<std::string>(), &s.rope.frequency_dtype)) {
      throw_error("engine.json: model.rope.frequency_dtype is not a dtype");
    }
    s.alibi_scale = json_finite(j, "alibi_scale", "model.");
    s.sliding_window = json_integer<int64_t>(j, "sliding_window", "model.");
    s.sliding_layers = j.at("sliding_layers").get<std::vector<bool>>();
    s.activation = enum_from(j, "activation", kActivations, activation_name);
    s.gated_mlp = j.at("gated_mlp").get<bool>();
    s.mlp_bias = j.at("mlp_bias").get<bool>();
    s.num_experts = json_integer<int64_t>(j, "num_experts", "model.");
    s.experts_per_token = json_integer<int64_t>(j, "experts_per_token", "model.");
    s.moe_normalize_topk = j.at("moe_normalize_topk").get<bool>();
    s.tied_embeddings = j.at("tied_embeddings").get<bool>();
    s.lm_head_bias = j.at("lm_head_bias").get<bool>();
    s.eos_token_ids = json_integers<int64_t>(j.at("eos_token_ids"), "model.eos_token_ids");
    s.bos_token_id = json_integer<int64_t>(j, "bos_token_id", "model.");
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw_error("engine.json: the model description is incomplete or malformed: ", e.what());
  }
}

}  // namespace kiln::engine
