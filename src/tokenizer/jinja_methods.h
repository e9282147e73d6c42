// The Python methods templates call on strings, dicts and lists ('a,b'.split(','), message.get('x'),
// d.items()). Methods that mutate a list or dict exist but are unsafe, as in Jinja2's immutable sandbox.
#pragma once

#include <string_view>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

enum class MethodSafety { kNone, kSafe, kUnsafe };
// Whether `receiver` (a str, dict, list or tuple) has a method called `name`, and whether the sandbox allows it.
MethodSafety find_method(const Value& receiver, std::string_view name);
// Calls a safe method found by find_method.
Value call_method(const Value& receiver, std::string_view name, const CallArgs& args);
// The method as a value (`x.split` without a call), callable later.
Value bind_method(const Value& receiver, std::string_view name);

}  // namespace kiln::tokenizer::jinja
