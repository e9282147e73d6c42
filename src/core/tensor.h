// Tensor views over memory kiln does not copy (mapped checkpoint files, engine
// blobs) and owned fp32 tensors for the tensors the compiler produces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kiln {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[384, 64]"

// A contiguous, row-major, read-only view. `keep_alive` holds whatever owns
// the bytes (a mapped file, a decompressed buffer) for as long as the view lives.
struct TensorView {
  DType dtype = DType::f32;
  Shape shape;
  const void* data = nullptr;
  std::shared_ptr<const void> keep_alive;

  int64_t numel() const { return shape_numel(shape); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
};

// An owned fp32 tensor: what adapters produce after renaming, splitting and fusing.
struct FloatTensor {
  Shape shape;
  std::vector<float> values;

  FloatTensor() = default;
  explicit FloatTensor(Shape s) : shape(std::move(s)), values(static_cast<std::size_t>(shape_numel(shape))) {}
  int64_t numel() const { return shape_numel(shape); }
  float* data() { return values.data(); }
  const float* data() const { return values.data(); }
};

// Copies any float view into fp32.
FloatTensor to_float(const TensorView& view);

}  // namespace kiln
