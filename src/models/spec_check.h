// Checks the ModelSpec an adapter read from config.json before the build plans
// or allocates anything from it: the spec's own consistency (core's
// check_model_spec, reported with config.json's key names) and the counts no
// tensor shape pins down (layers, experts), bounded by the tensors the
// checkpoint actually has, so that a config claiming 2^31 layers is refused at
// once instead of planning billions of tensors.
#pragma once

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "core/model_spec.h"

namespace kiln::models {

// Throws kiln::Error "<config.json>: <key> (<value>) ..." naming the field.
void check_config_spec(const ModelSpec& spec, const checkpoint::HfConfig& config, const checkpoint::WeightSet& weights);

}  // namespace kiln::models
