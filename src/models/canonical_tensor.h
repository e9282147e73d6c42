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

struct CanonicalTensor {
  std::string name;
  Shape shape;
  Layout layout = Layout::replicated;
  std::vector<std::string> sources;      // checkpoint tensors it reads
  std::function<FloatTensor()> produce;  // reads, checks shapes, renames/fuses
};

// Reads a checkpoint tensor as fp32 after checking its shape; the error names
// the tensor, the file and both shapes.
FloatTensor load_checked(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected);

}  // namespace kiln::models
