#include "tokenizer/jinja_args.h"

namespace kiln::tokenizer::jinja {

BoundArgs::BoundArgs(std::string_view function, const CallArgs& args,
                     std::initializer_list<std::string_view> parameters, std::size_t required)
    : function_(function), names_(parameters), slots_(parameters.size(), nullptr) {
  if (args.positional.size() > names_.size()) {
    throw_python_error("TypeError", function_, "() takes at most ", names_.size(), " argument(s) (",
                       args.positional.size(), " given)");
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    std::size_t index = 0;
    while (index < names_.size() && names_[index] != name) ++index;
    if (index == names_.size()) {
      throw_python_error("TypeError", function_, "() got an unexpected keyword argument '", name, "'");
    }
    if (slots_[index] != nullptr) {
      throw_python_error("TypeError", function_, "() got multiple values for argument '", name, "'");
    }
    slots_[index] = &value;
  }
  for (std::size_t i = 0; i < required; ++i) {
    if (slots_[i] == nullptr) {
      throw_python_error("TypeError", function_, "() missing 1 required positional argument: '", names_[i], "'");
    }
  }
}

std::int64_t BoundArgs::int_or(std::size_t index, std::int64_t fallback) const {
  if (!has(index)) return fallback;
  const Value& value = *slots_[index];
  if (!value.is_int() && !value.is_bool()) {
    throw_python_error("TypeError", function_, "() argument '", names_[index], "' must be an integer, not '",
                       value.type_name(), "'");
  }
  return value.as_int();
}

std::optional<std::string> BoundArgs::string_or_none(std::size_t index) const {
  if (!has(index) || slots_[index]->is_none()) return std::nullopt;
  const Value& value = *slots_[index];
  if (!value.is_string()) {
    throw_python_error("TypeError", function_, "() argument '", names_[index], "' must be str, not ",
                       value.type_name());
  }
  return value.as_string();
}

}  // namespace kiln::tokenizer::jinja
