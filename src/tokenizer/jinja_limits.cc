#include "tokenizer/jinja_limits.h"

#include "core/error.h"

namespace kiln::tokenizer::jinja {

thread_local RenderBudget* RenderBudget::current_ = nullptr;

RenderBudget::RenderBudget(const RenderLimits& limits) : limits_(limits), previous_(current_) { current_ = this; }

RenderBudget::~RenderBudget() {
  current_ = previous_;
  // One object at a time: what each held is freed while the others still keep theirs, so nothing recurses deep.
  for (auto& [object, release] : kept_) release(object.get());
}

void RenderBudget::check_value_depth(std::uint32_t depth) const {
  if (depth > limits_.max_value_depth) {
    throw_error("TemplateLimitError: the chat template would nest lists and dicts more than ", limits_.max_value_depth,
                " deep");
  }
}

void RenderBudget::check_string_size(std::size_t bytes) const {
  if (bytes > limits_.max_string_bytes) {
    throw_error("TemplateLimitError: the chat template would create a string of ",
                bytes == SIZE_MAX ? std::string("more than 2^64") : std::to_string(bytes),
                " bytes; a render may create strings of at most ", limits_.max_string_bytes, " bytes");
  }
}

void RenderBudget::charge_string(std::size_t bytes) {
  check_string_size(bytes);
  charge_total(bytes);
}

void RenderBudget::charge_items(std::size_t items) {
  if (items > limits_.max_list_items) {
    throw_error("TemplateLimitError: the chat template would create a list of ",
                items == SIZE_MAX ? std::string("more than 2^64") : std::to_string(items),
                " items; a render may create lists of at most ", limits_.max_list_items, " items");
  }
  // A list item is a Value: 40 bytes on 64-bit targets.
  charge_total(static_cast<std::uint64_t>(items) * 40);
}

void RenderBudget::charge_total(std::uint64_t bytes) {
  total_bytes_ += bytes;
  if (total_bytes_ > limits_.max_total_bytes) {
    throw_error("TemplateLimitError: the chat template created more than ", limits_.max_total_bytes,
                " bytes of strings and lists in one render");
  }
}

void RenderBudget::fail_steps() const {
  throw_error("TemplateLimitError: the chat template took more than ", limits_.max_steps,
              " evaluation steps (statements, expressions and loop iterations) in one render");
}

void RenderBudget::fail_depth() const {
  throw_error("TemplateLimitError: the chat template nests more than ", limits_.max_depth,
              " levels deep (recursive macro calls or loops, or deeply nested statements or expressions)");
}

}  // namespace kiln::tokenizer::jinja
