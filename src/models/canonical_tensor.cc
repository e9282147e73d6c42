#include "models/canonical_tensor.h"

#include "core/error.h"

namespace kiln::models {

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::replicated: return "replicated";
    case Layout::column: return "column";
    case Layout::row: return "row";
    case Layout::qkv: return "qkv";
    case Layout::gate_up: return "gate_up";
  }
  return "?";
}

TensorView check_source(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected) {
  TensorView view = weights.get(name);
  if (view.shape != expected) {
    throw_error("tensor '", name, "' in ", weights.file_of(name).string(), " has shape ", shape_str(view.shape),
                " but config.json implies ", shape_str(expected));
  }
  if (!is_float(view.dtype)) {
    throw_error("tensor '", name, "' in ", weights.file_of(name).string(), " has unsupported dtype ",
                dtype_name(view.dtype), " (expected fp32, fp16, bf16 or fp64)");
  }
  return view;
}

FloatTensor load_checked(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected) {
  return to_float(check_source(weights, name, expected));
}

}  // namespace kiln::models
