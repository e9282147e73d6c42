#include "core/model_spec.h"

namespace kiln {

std::string_view norm_kind_name(NormKind k) { return k == NormKind::rms ? "rms" : "layer"; }

std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::silu: return "silu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
  }
  return "?";
}

std::string_view position_kind_name(PositionKind p) {
  switch (p) {
    case PositionKind::rope: return "rope";
    case PositionKind::alibi: return "alibi";
    case PositionKind::learned: return "learned";
    case PositionKind::none: return "none";
  }
  return "?";
}

std::string_view rope_style_name(RopeStyle s) { return s == RopeStyle::neox ? "neox" : "interleaved"; }

std::string_view rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::none: return "none";
    case RopeScaling::linear: return "linear";
    case RopeScaling::dynamic: return "dynamic";
    case RopeScaling::llama3: return "llama3";
    case RopeScaling::yarn: return "yarn";
  }
  return "?";
}

namespace tensor_names {
std::string layer(int64_t index, const char* suffix) { return "layers." + std::to_string(index) + "." + suffix; }
std::string expert(int64_t layer_index, int64_t expert_index, const char* suffix) {
  return "layers." + std::to_string(layer_index) + ".moe.experts." + std::to_string(expert_index) + "." + suffix;
}
bool is_projection(std::string_view name) {
  if (!name.starts_with("layers.")) return false;
  for (const char* suffix : {kQkvWeight, kOutWeight, kGateUpWeight, kUpWeight, kDownWeight}) {
    if (name.ends_with(std::string(".") + suffix)) return true;
  }
  // Experts' matrices: "layers.<i>.moe.experts.<j>.gate_up.weight" / "down.weight".
  return name.find(".moe.experts.") != std::string_view::npos &&
         (name.ends_with(std::string(".") + kExpertGateUpWeight) ||
          name.ends_with(std::string(".") + kExpertDownWeight));
}
std::string scale_of(std::string_view name) { return std::string(name) + "_scale"; }
}  // namespace tensor_names

}  // namespace kiln
