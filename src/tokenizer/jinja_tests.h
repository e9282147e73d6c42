// Jinja2's built-in tests ({% if value is name(args) %}).
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace kiln::tokenizer::jinja {

// The test called `name`, or nullptr when there is none.
TestFn find_test(std::string_view name);

}  // namespace kiln::tokenizer::jinja
