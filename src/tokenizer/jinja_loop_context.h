// The `loop` variable of a {% for %} loop: loop.index, loop.first, loop.cycle(...), and for a `recursive` loop
// the call loop(children).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

class LoopContext : public Object, public std::enable_shared_from_this<LoopContext> {
 public:
  // Renders the loop body over other items, one level deeper (set only for `recursive` loops).
  using Recursion = std::function<Value(const Value& iterable)>;

  LoopContext(std::shared_ptr<const std::vector<Value>> items, int depth, Recursion recursion)
      : items_(std::move(items)), depth_(depth), recursion_(std::move(recursion)) {}

  void set_index(std::size_t index) { index_ = index; }
  // loop(children).
  Value call(const CallArgs& args) const;

  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override;
  std::optional<Value> attribute(std::string_view name) const override;

 private:
  std::shared_ptr<const std::vector<Value>> items_;
  std::size_t index_ = 0;
  int depth_;
  Recursion recursion_;
  // loop.changed() compares with the values of its previous call.
  mutable std::optional<Value> last_changed_;
};

}  // namespace kiln::tokenizer::jinja
