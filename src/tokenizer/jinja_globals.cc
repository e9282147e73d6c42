#include "tokenizer/jinja_globals.h"

#include <ctime>

#include "tokenizer/jinja_access.h"
#include "tokenizer/jinja_args.h"

namespace kiln::tokenizer::jinja {

namespace {

using Function = Value (*)(const CallArgs& args);

class GlobalFunction : public Callable {
 public:
  GlobalFunction(std::string name, Function function) : name_(std::move(name)), function_(function) {}
  Value call(const CallArgs& args) const override { return function_(args); }
  std::string repr() const override { return "<function " + name_ + ">"; }

 private:
  std::string name_;
  Function function_;
};

// The sandbox caps range() so a template cannot exhaust memory.
constexpr std::int64_t kMaxRange = 100000;

Value range(const CallArgs& args) {
  if (!args.keyword.empty()) throw_python_error("TypeError", "range() takes no keyword arguments");
  std::vector<std::int64_t> bounds;
  for (const Value& arg : args.positional) {
    if (!arg.is_int() && !arg.is_bool()) {
      throw_python_error("TypeError", "'", arg.type_name(), "' object cannot be interpreted as an integer");
    }
    bounds.push_back(arg.as_int());
  }
  std::int64_t start = 0, stop = 0, step = 1;
  switch (bounds.size()) {
    case 1: stop = bounds[0]; break;
    case 2: start = bounds[0], stop = bounds[1]; break;
    case 3: start = bounds[0], stop = bounds[1], step = bounds[2]; break;
    default: throw_python_error("TypeError", "range expected at most 3 arguments, got ", bounds.size());
  }
  if (step == 0) throw_python_error("ValueError", "range() arg 3 must not be zero");
  const std::int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                      : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (count > kMaxRange) {
    throw_python_error("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange,
                       ").");
  }
  std::vector<Value> items;
  items.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) items.emplace_back(start + i * step);
  return Value::list(std::move(items));
}

Value make_dict(const CallArgs& args) {
  Dict dict;
  if (args.positional.size() > 1) throw_python_error("TypeError", "dict expected at most 1 argument");
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      dict = source.as_dict();
    } else {
      for (const Value& pair : iterate(source)) {
        const std::vector<Value> parts = iterate(pair);
        if (parts.size() != 2) throw_python_error("ValueError", "dictionary update sequence element has wrong length");
        dict.set(parts[0], parts[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keyword) dict.set(Value(key), value);
  return Value::dict(std::move(dict));
}

Value make_namespace(const CallArgs& args) {
  auto space = std::make_shared<Namespace>();
  if (RenderBudget* budget = RenderBudget::current()) {
    budget->keep_until_end(space, [](void* object) { static_cast<Namespace*>(object)->clear(); });
  }
  const Value initial = make_dict(args);
  for (const auto& [key, value] : initial.as_dict().entries()) space->set(key.str(), value);
  return Value(std::shared_ptr<Object>(std::move(space)));
}

// transformers: raise_exception(message) raises TemplateError(message); its text is the whole error.
Value raise_exception(const CallArgs& args) {
  const BoundArgs bound("raise_exception", args, {"message"}, 1);
  throw Error(bound.get(0).str());
}

// transformers: strftime_now(format) = datetime.now().strftime(format), in local time.
Value strftime_now(const CallArgs& args) {
  const std::string format = BoundArgs("strftime_now", args, {"format"}, 1).get(0).str();
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string out(format.size() * 4 + 64, '\0');
  const std::size_t written = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &local);
  out.resize(written);
  return Value(out);
}

// cycler(*items): .next() walks the items round and round, .current is the one next() returns next.
class Cycler : public Object, public std::enable_shared_from_this<Cycler> {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  std::string repr() const override { return "<Cycler>"; }
  std::optional<Value> attribute(std::string_view name) const override {
    if (name == "current") return items_.empty() ? Value() : items_[position_];
    if (name == "next" || name == "reset") {
      return Value(std::shared_ptr<const Callable>(std::make_shared<Method>(shared_from_this(), name == "next")));
    }
    return std::nullopt;
  }

 private:
  class Method : public Callable {
   public:
    Method(std::shared_ptr<const Cycler> cycler, bool advance) : cycler_(std::move(cycler)), advance_(advance) {}
    Value call(const CallArgs&) const override {
      if (!advance_) {
        cycler_->position_ = 0;
        return Value(None{});
      }
      if (cycler_->items_.empty()) return Value();
      const Value current = cycler_->items_[cycler_->position_];
      cycler_->position_ = (cycler_->position_ + 1) % cycler_->items_.size();
      return current;
    }
    std::string repr() const override { return "<bound method of Cycler>"; }

   private:
    std::shared_ptr<const Cycler> cycler_;
    bool advance_;
  };

  std::vector<Value> items_;
  // Advancing is not a mutation of the template's data, so next() works through a const object.
  mutable std::size_t position_ = 0;
};

Value make_cycler(const CallArgs& args) {
  return Value(std::shared_ptr<Object>(std::make_shared<Cycler>(args.positional)));
}

// joiner(sep): returns "" the first time it is called and sep after that.
class Joiner : public Callable {
 public:
  explicit Joiner(std::string separator) : separator_(std::move(separator)) {}
  Value call(const CallArgs&) const override {
    if (!used_) {
      used_ = true;
      return Value("");
    }
    return Value(separator_);
  }
  std::string repr() const override { return "<Joiner>"; }

 private:
  std::string separator_;
  mutable bool used_ = false;
};

Value make_joiner(const CallArgs& args) {
  const BoundArgs bound("joiner", args, {"sep"});
  return Value(std::shared_ptr<const Callable>(std::make_shared<Joiner>(bound.get_or(0, Value(", ")).str())));
}

Value function(std::string name, Function f) {
  return Value(std::shared_ptr<const Callable>(std::make_shared<GlobalFunction>(std::move(name), f)));
}

}  // namespace

const std::vector<std::pair<std::string, Value>>& global_functions() {
  static const std::vector<std::pair<std::string, Value>> globals = {
      {"range", function("range", range)},
      {"dict", function("dict", make_dict)},
      {"namespace", function("namespace", make_namespace)},
      {"cycler", function("cycler", make_cycler)},
      {"joiner", function("joiner", make_joiner)},
      {"raise_exception", function("raise_exception", raise_exception)},
      {"strftime_now", function("strftime_now", strftime_now)},
  };
  return globals;
}

}  // namespace kiln::tokenizer::jinja
