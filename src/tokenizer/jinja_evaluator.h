// Renders a parsed template: executes its statements and evaluates its expressions with Jinja2's semantics
// (scoping, loops and the loop variable, macros, Undefined), writing the output text.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_limits.h"

namespace kiln::tokenizer::jinja {

// Renders `body` with `variables` as the template's context, on top of the global functions. A render that
// passes one of `limits` throws kiln::Error("TemplateLimitError: ...").
std::string render_template(const Body& body, const std::vector<std::pair<std::string, Value>>& variables,
                            const RenderLimits& limits = {});

}  // namespace kiln::tokenizer::jinja
