#include "models/adapter.h"

namespace kiln::models {

ModelSpec Adapter::spec(const checkpoint::HfConfig& config) const {
  ModelSpec s = family_.spec(config);
  if (s.family.empty()) s.family = family_.name;
  return s;
}

std::vector<CanonicalTensor> Adapter::tensors(const ModelSpec& spec, const checkpoint::WeightSet& weights) const {
  return decoder_tensors(spec, weights, family_.layout(spec));
}

bool Adapter::ignorable(std::string_view checkpoint_name) const {
  for (auto suffix : family_.ignored_suffixes) {
    if (checkpoint_name.ends_with(suffix)) return true;
  }
  return false;
}

}  // namespace kiln::models
