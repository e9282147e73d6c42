// ModelSpec <-> JSON, as stored in engine.json.
#pragma once

#include <nlohmann/json.hpp>

#include "core/model_spec.h"

namespace kiln::engine {

nlohmann::json spec_to_json(const ModelSpec& spec);
// Throws kiln::Error naming the field when the JSON does not describe a spec.
ModelSpec spec_from_json(const nlohmann::json& json);

}  // namespace kiln::engine
