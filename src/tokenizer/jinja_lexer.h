// Splits a Jinja template into tokens exactly as Jinja2's lexer does under transformers' settings
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False): template text with whitespace control
// applied, and the tokens inside {{ }} and {% %}. Comments vanish and {% raw %} bodies become plain text here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer::jinja {

enum class TokenType {
  kData,           // template text, whitespace control already applied
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,    // text: the unescaped value
  kInteger,   // integer
  kFloat,     // number
  kOperator,  // text: the operator, e.g. "==" or "("
  kEnd,
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string text;
  std::int64_t integer = 0;
  double number = 0;
  int line = 1;
};

std::vector<Token> tokenize(std::string_view source);

// Throws kiln::Error for a template that cannot be parsed, naming the line.
[[noreturn]] void throw_syntax_error(int line, std::string_view message);

}  // namespace kiln::tokenizer::jinja
