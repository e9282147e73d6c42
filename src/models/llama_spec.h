// The ModelSpec fields every Llama-shaped config spells the same way (sizes,
// eps, rope, tying, special tokens); callers set the family and whatever their
// family does differently.
#pragma once

#include "checkpoint/hf_config.h"
#include "core/model_spec.h"

namespace kiln::models {

ModelSpec llama_spec(const checkpoint::HfConfig& config);

}  // namespace kiln::models
