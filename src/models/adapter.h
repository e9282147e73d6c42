// A family: how one HuggingFace architecture maps onto the canonical model.
// Its config becomes a ModelSpec (`spec`), its tensor names a DecoderLayout
// (`layout`); the mapping itself (decoder_tensors) is shared by all families,
// so a family is a page of names and config keys, not code.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "checkpoint/hf_config.h"
#include "core/model_spec.h"
#include "models/decoder_layout.h"

namespace kiln::models {

struct Family {
  std::string_view name;                        // recorded as ModelSpec::family unless spec() sets one
  std::vector<std::string_view> architectures;  // HF `architectures` entries it takes
  std::vector<std::string_view> model_types;    // and `model_type` values, for configs without architectures
  std::function<ModelSpec(const checkpoint::HfConfig&)> spec;
  std::function<DecoderLayout(const ModelSpec&)> layout;
  std::vector<std::string_view> ignored_suffixes = {};  // checkpoint buffers that are not weights
};

class Adapter {
 public:
  explicit Adapter(Family family) : family_(std::move(family)) {}
  std::string_view name() const { return family_.name; }
  const std::vector<std::string_view>& architectures() const { return family_.architectures; }
  const std::vector<std::string_view>& model_types() const { return family_.model_types; }
  ModelSpec spec(const checkpoint::HfConfig& config) const;
  // The canonical tensors of `spec`, read lazily from `weights` (which must outlive them).
  std::vector<CanonicalTensor> tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const;
  // Checkpoint tensors that are expected but not weights (rotary buffers, causal masks).
  bool ignorable(std::string_view checkpoint_name) const;

 private:
  Family family_;
};

}  // namespace kiln::models
