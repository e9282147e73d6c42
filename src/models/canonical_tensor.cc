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
  // E4M3: a pre-quantized checkpoint's projection, which the compiler copies as stored.
  if (!is_float(view.dtype) && view.dtype != DType::f8e4m3) {
    throw_error("tensor '", name, "' in ", weights.file_of(name).string(), " has unsupported dtype ",
                dtype_name(view.dtype), " (expected fp32, fp16, bf16, fp64, or F8_E4M3 in an FP8 checkpoint)");
  }
  return view;
}

FloatTensor load_checked(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected) {
  return to_float(check_source(weights, name, expected));
}

}  // namespace kiln::models
