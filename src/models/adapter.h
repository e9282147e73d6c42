// An adapter maps one HuggingFace family onto the canonical model: its config
// to a ModelSpec, its tensor names and layouts to canonical tensors. Tensors
// are produced one at a time (CanonicalTensor::produce) so the compiler never
// holds a whole 7B checkpoint in fp32.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "core/model_spec.h"
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

class Adapter {
 public:
  virtual ~Adapter() = default;
  // Short family name recorded in the engine ("llama", "qwen2", ...).
  virtual std::string_view name() const = 0;
  // HF `architectures` entries (and model_type values) this adapter takes.
  virtual std::vector<std::string_view> architectures() const = 0;
  virtual std::vector<std::string_view> model_types() const { return {}; }
  virtual ModelSpec spec(const checkpoint::HfConfig& config) const = 0;
  // The canonical tensors of `spec`, read lazily from `weights` (which must outlive them).
  virtual std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const = 0;
  // Checkpoint tensors that are expected but not weights (rotary buffers ...).
  virtual bool ignorable(std::string_view /*checkpoint_name*/) const { return false; }
};

// Reads a checkpoint tensor as fp32 after checking its shape; the error names
// the tensor, the file and both shapes.
FloatTensor load_checked(const checkpoint::WeightSet& weights, const std::string& name, const Shape& expected);

}  // namespace kiln::models
