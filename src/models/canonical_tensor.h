// A canonical tensor as an adapter describes it: its name, shape and layout,
// the checkpoint tensors it reads, and how to produce it. Tensors are produced
// one at a time so the compiler never holds a whole 7B checkpoint in fp32.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/tensor.h"

namespace kiln::models {

// How a canonical tensor is laid out, which tensor parallelism needs to know
// to split it: qkv rows are [q; k; v], gate_up rows are [gate; up].
enum class Layout { replicated, column, row, qkv, gate_up };
std::string_view layout_name(Layout layout);

// Rows [first_row, first_row + rows) of source `source` (an index into
// CanonicalTensor::sources); 1-D tensors count elements as rows.
struct RowPiece {
  std::size_t source = 0;
  int64_t first_row = 0;
  int64_t rows = 0;
};

struct CanonicalTensor {
  std::string name;
  Shape shape;
  Layout layout = Layout::replicated;
  std::vector<std::string> sources;      // checkpoint tensors it reads
  std::vector<Shape> source_shapes;      // the shape each source must have as stored
  std::function<FloatTensor()> produce;  // reads, checks shapes, renames/fuses
  // When not empty, the tensor is exactly these source rows in this order, with
  // nothing else done to them (no transposition, no normalization): a compiler
  // may then copy the rows straight from the checkpoint, converting only the
  // dtype, instead of calling produce(). Empty when only produce() can make it.
  std::vector<RowPiece> rows;
};

// A checkpoint tensor after checking that it is a float tensor of the expected
// shape; the error names the tensor, the file and both shapes.
TensorView check_source(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected);
// check_source, read as fp32.
FloatTensor load_checked(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected);

}  // namespace kiln::models
