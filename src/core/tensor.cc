#include "core/tensor.h"

#include <sstream>

namespace kiln {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

FloatTensor to_float(const TensorView& view) {
  FloatTensor t(view.shape);
  convert_to_f32(view.dtype, view.data, t.data(), t.values.size());
  return t;
}

}  // namespace kiln
