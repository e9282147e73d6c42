#include "tokenizer/jinja_loop_context.h"

namespace kiln::tokenizer::jinja {

namespace {

// loop.cycle(a, b, ...): the argument at this iteration's position.
class Cycle : public Callable {
 public:
  explicit Cycle(std::size_t index) : index_(index) {}
  Value call(const CallArgs& args) const override {
    if (args.positional.empty()) throw_python_error("TypeError", "no items for cycling given");
    return args.positional[index_ % args.positional.size()];
  }
  std::string repr() const override { return "<bound method LoopContext.cycle>"; }

 private:
  std::size_t index_;
};

// loop.changed(*values): whether the values differ from those of the previous call.
class Changed : public Callable {
 public:
  Changed(std::shared_ptr<const LoopContext> loop, std::optional<Value>& last) : loop_(std::move(loop)), last_(last) {}
  Value call(const CallArgs& args) const override {
    const Value current = Value::tuple(args.positional);
    if (last_ && last_->equals(current)) return Value(false);
    last_ = current;
    return Value(true);
  }
  std::string repr() const override { return "<bound method LoopContext.changed>"; }

 private:
  std::shared_ptr<const LoopContext> loop_;  // keeps `last_` alive
  std::optional<Value>& last_;
};

}  // namespace

Value LoopContext::call(const CallArgs& args) const {
  if (!recursion_) {
    throw_python_error("TypeError", "The loop must have the 'recursive' marker to be called recursively.");
  }
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    throw_python_error("TypeError", "loop() takes exactly one argument");
  }
  return recursion_(args.positional[0]);
}

std::string LoopContext::repr() const { return concat("<LoopContext ", index_ + 1, "/", items_->size(), ">"); }

std::optional<Value> LoopContext::attribute(std::string_view name) const {
  const std::size_t length = items_->size();
  if (name == "index") return Value(index_ + 1);
  if (name == "index0") return Value(index_);
  if (name == "revindex") return Value(length - index_);
  if (name == "revindex0") return Value(length - index_ - 1);
  if (name == "first") return Value(index_ == 0);
  if (name == "last") return Value(index_ + 1 == length);
  if (name == "length") return Value(length);
  if (name == "depth") return Value(depth_);
  if (name == "depth0") return Value(depth_ - 1);
  if (name == "previtem") return index_ > 0 ? (*items_)[index_ - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem") {
    return index_ + 1 < length ? (*items_)[index_ + 1] : Value::undefined("there is no next item");
  }
  if (name == "cycle") return Value(std::shared_ptr<const Callable>(std::make_shared<Cycle>(index_)));
  if (name == "changed") {
    return Value(std::shared_ptr<const Callable>(std::make_shared<Changed>(shared_from_this(), last_changed_)));
  }
  return std::nullopt;
}

}  // namespace kiln::tokenizer::jinja
