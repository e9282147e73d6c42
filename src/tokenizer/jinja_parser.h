// Parses Jinja template source into a syntax tree, following Jinja2's grammar (parser.py) statement by
// statement and with its operator precedence. Syntax errors throw kiln::Error naming the line.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace kiln::tokenizer::jinja {

Body parse_template(std::string_view source);

}  // namespace kiln::tokenizer::jinja
