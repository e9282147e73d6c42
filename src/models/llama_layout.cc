#include "models/llama_layout.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace kiln::models {
namespace {

using checkpoint::HfConfig;
using checkpoint::WeightSet;
namespace tn = tensor_names;

// Concatenates tensors along their first dimension.
FloatTensor concat_rows(const std::vector<FloatTensor>& parts) {
  Shape shape = parts.at(0).shape;
  shape[0] = 0;
  for (const auto& p : parts) shape[0] += p.shape[0];
  FloatTensor out(shape);
  float* dst = out.data();
  for (const auto& p : parts) {
    std::memcpy(dst, p.data(), p.values.size() * sizeof(float));
    dst += p.values.size();
  }
  return out;
}

// [kv][q_0..q_{g-1}, k, v][head_dim](cols) -> [all q; all k; all v].
FloatTensor ungroup_qkv(const FloatTensor& grouped, int64_t kv_heads, int64_t group, int64_t head_dim) {
  FloatTensor out(grouped.shape);
  const int64_t cols = grouped.shape.size() > 1 ? grouped.shape[1] : 1;
  const int64_t head_elems = head_dim * cols;
  const int64_t q_heads = kv_heads * group;
  for (int64_t h = 0; h < kv_heads; ++h) {
    const float* src = grouped.data() + h * (group + 2) * head_elems;
    for (int64_t j = 0; j < group; ++j) {
      std::memcpy(out.data() + (h * group + j) * head_elems, src + j * head_elems, head_elems * sizeof(float));
    }
    std::memcpy(out.data() + (q_heads + h) * head_elems, src + group * head_elems, head_elems * sizeof(float));
    std::memcpy(out.data() + (q_heads + kv_heads + h) * head_elems, src + (group + 1) * head_elems,
                head_elems * sizeof(float));
  }
  return out;
}

void normalize_rows(FloatTensor& t) {
  const int64_t cols = t.shape.at(1);
  for (int64_t r = 0; r < t.shape[0]; ++r) {
    float* row = t.data() + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += double(row[c]) * row[c];
    const double scale = 1.0 / std::max(std::sqrt(sum), 1e-12);  // as torch.nn.functional.normalize
    for (int64_t c = 0; c < cols; ++c) row[c] = static_cast<float>(row[c] * scale);
  }
}

CanonicalTensor direct(const WeightSet& w, std::string name, std::string source, Shape shape, Layout layout) {
  CanonicalTensor t{std::move(name), shape, layout, {source}, nullptr};
  t.produce = [&w, source, shape] { return load_checked(w, source, shape); };
  return t;
}

}  // namespace

RopeSpec rope_from_config(const HfConfig& config, int64_t rotary_dim, double default_theta) {
  RopeSpec rope;
  rope.rotary_dim = rotary_dim;
  rope.theta = config.rope_theta(default_theta);
  if (auto name = config.torch_dtype()) {
    DType t;
    if (parse_dtype(*name, &t) && (t == DType::f16 || t == DType::bf16)) rope.frequency_dtype = t;
  }
  const auto scaling = config.rope_scaling();
  if (scaling.is_null()) return rope;
  const std::string type = scaling.value("rope_type", "default");
  auto number = [&](const char* key, double fallback) {
    return scaling.contains(key) && scaling[key].is_number() ? scaling[key].get<double>() : fallback;
  };
  rope.factor = number("factor", 1.0);
  if (type == "linear") {
    rope.scaling = RopeScaling::linear;
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::llama3;
    rope.low_freq_factor = number("low_freq_factor", 1.0);
    rope.high_freq_factor = number("high_freq_factor", 4.0);
    rope.original_max_positions = static_cast<int64_t>(number("original_max_position_embeddings", 8192));
  } else {
    throw_error(config.file().string(), ": rope scaling type '", type,
                "' is not supported yet (supported: linear, llama3)");
  }
  return rope;
}

ModelSpec llama_spec(const HfConfig& config) {
  ModelSpec s;
  const auto archs = config.architectures();
  s.hf_architecture = archs.empty() ? config.model_type() : archs[0];
  s.vocab_size = config.get_int("vocab_size");
  s.hidden_size = config.get_int("hidden_size");
  s.num_layers = config.get_int("num_hidden_layers");
  s.num_heads = config.get_int("num_attention_heads");
  s.num_kv_heads = config.get_int("num_key_value_heads", s.num_heads);
  if (s.num_heads <= 0 || s.hidden_size <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0) {
    throw_error(config.file().string(), ": num_attention_heads ", s.num_heads, " must be a positive multiple of ",
                "num_key_value_heads ", s.num_kv_heads);
  }
  s.head_dim = config.get_int("head_dim", s.hidden_size / s.num_heads);
  s.intermediate_size = config.get_int("intermediate_size");
  s.max_positions = config.get_int("max_position_embeddings", 0);
  s.norm = NormKind::rms;
  s.norm_eps = config.get_double("rms_norm_eps", 1e-6);
  const std::string act = config.get_string("hidden_act", "silu");
  if (act != "silu" && act != "swish") {
    throw_error(config.file().string(), ": hidden_act '", act, "' is not supported for this family (silu)");
  }
  s.activation = Activation::silu;
  s.gated_mlp = true;
  if (config.get_bool("mlp_bias", false)) {
    throw_error(config.file().string(), ": mlp_bias true is not supported yet");
  }
  s.positions = PositionKind::rope;
  s.rope = rope_from_config(config, s.head_dim);
  s.tied_embeddings = config.get_bool("tie_word_embeddings", false);
  s.eos_token_ids = config.eos_token_ids();
  s.bos_token_id = config.bos_token_id();
  return s;
}

std::vector<CanonicalTensor> llama_tensors(const ModelSpec& s, const WeightSet& w, const LlamaLayout& l) {
  const int64_t H = s.hidden_size;
  std::vector<CanonicalTensor> out;
  out.push_back(direct(w, tn::kEmbed, l.embed, {s.vocab_size, H}, Layout::replicated));
  for (int64_t i = 0; i < s.num_layers; ++i) {
    const std::string p = l.layer_prefix + std::to_string(i) + ".";
    out.push_back(direct(w, tn::layer(i, tn::kAttnNormWeight), p + l.attn_norm, {H}, Layout::replicated));

    // q, k and v, fused into the canonical [q; k; v].
    const Shape qkv_shape{s.qkv_rows(), H};
    const Shape q_shape{s.q_size(), H}, kv_shape{s.kv_size(), H};
    CanonicalTensor qkv{tn::layer(i, tn::kQkvWeight), qkv_shape, Layout::qkv, {}, nullptr};
    CanonicalTensor qkv_bias{tn::layer(i, tn::kQkvBias), {s.qkv_rows()}, Layout::qkv, {}, nullptr};
    if (l.qkv_storage == QkvStorage::separate) {
      const std::string q = p + l.q, k = p + l.k, v = p + l.v;
      qkv.sources = {q + ".weight", k + ".weight", v + ".weight"};
      qkv.produce = [&w, q, k, v, q_shape, kv_shape] {
        return concat_rows({load_checked(w, q + ".weight", q_shape), load_checked(w, k + ".weight", kv_shape),
                            load_checked(w, v + ".weight", kv_shape)});
      };
      qkv_bias.sources = {q + ".bias", k + ".bias", v + ".bias"};
      qkv_bias.produce = [&w, q, k, v, s] {
        return concat_rows({load_checked(w, q + ".bias", {s.q_size()}), load_checked(w, k + ".bias", {s.kv_size()}),
                            load_checked(w, v + ".bias", {s.kv_size()})});
      };
    } else {
      const std::string fused = p + l.qkv_fused;
      const bool grouped = l.qkv_storage == QkvStorage::fused_grouped;
      const int64_t group = s.num_heads / s.num_kv_heads;
      qkv.sources = {fused + ".weight"};
      qkv.produce = [&w, fused, qkv_shape, grouped, s, group] {
        FloatTensor t = load_checked(w, fused + ".weight", qkv_shape);
        return grouped ? ungroup_qkv(t, s.num_kv_heads, group, s.head_dim) : t;
      };
      qkv_bias.sources = {fused + ".bias"};
      qkv_bias.produce = [&w, fused, s, grouped, group] {
        FloatTensor t = load_checked(w, fused + ".bias", {s.qkv_rows()});
        return grouped ? ungroup_qkv(t, s.num_kv_heads, group, s.head_dim) : t;
      };
    }
    out.push_back(std::move(qkv));
    if (s.qkv_bias) out.push_back(std::move(qkv_bias));

    out.push_back(direct(w, tn::layer(i, tn::kOutWeight), p + l.o + ".weight", {H, s.q_size()}, Layout::row));
    if (s.out_bias) out.push_back(direct(w, tn::layer(i, tn::kOutBias), p + l.o + ".bias", {H}, Layout::replicated));
    out.push_back(direct(w, tn::layer(i, tn::kMlpNormWeight), p + l.mlp_norm, {H}, Layout::replicated));

    const Shape ffn_in{s.intermediate_size, H};
    const std::string gate = p + l.gate + ".weight", up = p + l.up + ".weight";
    CanonicalTensor gate_up{
        tn::layer(i, tn::kGateUpWeight), {2 * s.intermediate_size, H}, Layout::gate_up, {gate, up}, nullptr};
    gate_up.produce = [&w, gate, up, ffn_in] {
      return concat_rows({load_checked(w, gate, ffn_in), load_checked(w, up, ffn_in)});
    };
    out.push_back(std::move(gate_up));
    out.push_back(
        direct(w, tn::layer(i, tn::kDownWeight), p + l.down + ".weight", {H, s.intermediate_size}, Layout::row));
  }
  out.push_back(direct(w, tn::kFinalNormWeight, l.final_norm, {H}, Layout::replicated));
  if (!s.tied_embeddings) {
    CanonicalTensor head = direct(w, tn::kLmHead, l.lm_head, {s.vocab_size, H}, Layout::replicated);
    if (l.normalize_lm_head_rows) {
      head.produce = [&w, name = l.lm_head, shape = head.shape] {
        FloatTensor t = load_checked(w, name, shape);
        normalize_rows(t);
        return t;
      };
    }
    out.push_back(std::move(head));
  }
  return out;
}

}  // namespace kiln::models
