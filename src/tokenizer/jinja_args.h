// Binds a call's arguments to a Python-style signature, for the built-in filters, tests, methods and functions:
// positional arguments fill the parameters in order, keywords fill them by name, and what is left unfilled
// falls back to the default the callee supplies.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

class BoundArgs {
 public:
  // `function` names the callee in errors; the first `required` parameters must be given.
  BoundArgs(std::string_view function, const CallArgs& args, std::initializer_list<std::string_view> parameters,
            std::size_t required = 0);

  bool has(std::size_t index) const { return slots_[index] != nullptr; }
  // The argument, or an Undefined when it was not given.
  Value get(std::size_t index) const { return has(index) ? *slots_[index] : Value(); }
  Value get_or(std::size_t index, Value fallback) const { return has(index) ? *slots_[index] : fallback; }
  bool truthy_or(std::size_t index, bool fallback) const { return has(index) ? slots_[index]->truthy() : fallback; }
  // An integer argument (bool accepted, as in Python); a TypeError otherwise.
  std::int64_t int_or(std::size_t index, std::int64_t fallback) const;
  // A string argument; absent or None gives nullopt.
  std::optional<std::string> string_or_none(std::size_t index) const;

 private:
  std::string function_;
  std::vector<std::string_view> names_;
  std::vector<const Value*> slots_;
};

}  // namespace kiln::tokenizer::jinja
