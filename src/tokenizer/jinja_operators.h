// Python's operators on template values: arithmetic (+ - * / // % **, with str/list concatenation and
// repetition and printf-style str % args), comparisons and membership, with Python's results and TypeErrors.
#pragma once

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

Value apply_binary(BinaryOp op, const Value& left, const Value& right);
Value negate(const Value& operand);
Value unary_plus(const Value& operand);
bool compare(CompareOp op, const Value& left, const Value& right);
// Python's `item in container`.
bool contains(const Value& container, const Value& item);
// Python's left < right, the ordering sort(), min() and max() use.
bool less_than(const Value& left, const Value& right);
// Python's left > right, which max() uses.
bool greater_than(const Value& left, const Value& right);
// printf-style formatting: format % args (args a tuple for several values, or a dict for %(name)s).
std::string percent_format(const std::string& format, const Value& args);

}  // namespace kiln::tokenizer::jinja
