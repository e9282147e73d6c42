// A fixture checkpoint as the models-layer tests read it: its config, weights,
// the adapter's spec and the canonical tensors, with lookups.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/registry.h"

namespace kiln::models::testing {

inline const std::filesystem::path kModels = std::filesystem::path(KILN_FIXTURES) / "models";

struct LoadedFixture {
  checkpoint::HfConfig config;
  checkpoint::WeightSet weights;
  const Adapter* adapter = nullptr;
  ModelSpec spec;
  std::vector<CanonicalTensor> tensors;

  explicit LoadedFixture(const std::string& fixture)
      : config(checkpoint::HfConfig::load(kModels / fixture)), weights(checkpoint::WeightSet::open(kModels / fixture)) {
    adapter = &Registry::builtin().find(config);
    spec = adapter->spec(config);
    tensors = adapter->tensors(spec, weights);
  }

  const CanonicalTensor& find(const std::string& name) const {
    for (const auto& t : tensors) {
      if (t.name == name) return t;
    }
    throw Error("no canonical tensor " + name);
  }
  bool has(const std::string& name) const {
    for (const auto& t : tensors) {
      if (t.name == name) return true;
    }
    return false;
  }
  FloatTensor produce(const std::string& name) const {
    const auto& t = find(name);
    FloatTensor out = t.produce();
    EXPECT_EQ(out.shape, t.shape) << name;
    return out;
  }
  FloatTensor checkpoint(const std::string& name) const { return to_float(weights.get(name)); }
};

}  // namespace kiln::models::testing
