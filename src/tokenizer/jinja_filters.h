// Jinja2's built-in filters ({{ value | name(args) }}), with transformers' tojson in place of Jinja's.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace kiln::tokenizer::jinja {

// The filter called `name`, or nullptr when there is none.
FilterFn find_filter(std::string_view name);

}  // namespace kiln::tokenizer::jinja
