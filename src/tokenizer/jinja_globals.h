// The functions a template can call by name: Jinja2's globals (range, dict, namespace, cycler, joiner) and the
// two transformers adds (raise_exception, strftime_now).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

// The global names and their values; the render context may shadow them.
const std::vector<std::pair<std::string, Value>>& global_functions();

}  // namespace kiln::tokenizer::jinja
