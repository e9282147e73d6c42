// Checks that a ModelSpec describes a decoder the runtime can execute safely,
// wherever the spec came from (an adapter reading config.json, or engine.json
// read back). Every kernel sizes its loops and buffers from these fields, so a
// field out of range or inconsistent with another would index out of bounds,
// divide by zero or allocate without bound. Each check names the field.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/model_spec.h"

namespace kiln {

// Bounds no real model comes near (the largest public ones are 10-100x below),
// chosen so that every product of two dimensions fits comfortably in int64.
struct ModelSpecBounds {
  static constexpr int64_t kMaxLayers = 4096;
  static constexpr int64_t kMaxHidden = int64_t{1} << 17;
  static constexpr int64_t kMaxHeads = 4096;
  static constexpr int64_t kMaxHeadDim = 1024;
  static constexpr int64_t kMaxIntermediate = int64_t{1} << 20;
  static constexpr int64_t kMaxVocab = int64_t{1} << 23;
  static constexpr int64_t kMaxExperts = 1024;
  static constexpr int64_t kMaxPositions = int64_t{1} << 24;
};

// Turns a ModelSpec field name ("num_layers", "rope.rotary_dim") into the name
// the user wrote: "model.num_layers" in engine.json, "num_hidden_layers" in
// config.json. Without one, the spec's own names are used.
using SpecFieldNamer = std::function<std::string(std::string_view field)>;

// Throws kiln::Error "<where>: <field> ..." for the first field that is out of
// range or inconsistent with another.
void check_model_spec(const ModelSpec& spec, std::string_view where, const SpecFieldNamer& namer = {});

}  // namespace kiln
