// Renders a parsed template: executes its statements and evaluates its expressions with Jinja2's semantics
// (scoping, loops and the loop variable, macros, Undefined), writing the output text.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_ast.h"

namespace kiln::tokenizer::jinja {

// Renders `body` with `variables` as the template's context, on top of the global functions.
std::string render_template(const Body& body, const std::vector<std::pair<std::string, Value>>& variables);

}  // namespace kiln::tokenizer::jinja
