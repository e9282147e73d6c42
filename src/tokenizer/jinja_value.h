// The values a Jinja template computes with, modelled on the Python objects Jinja2 uses: None, bool, int,
// float, str, list/tuple, dict (insertion-ordered), Jinja's Undefined, and opaque objects (namespace(), the
// loop variable) and callables (macros, global functions, bound methods). Strings hold UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja_limits.h"

namespace kiln::tokenizer::jinja {

class Value;

// Throws kiln::Error("<type>: <message>"), the form Python prints an exception in ("TypeError: ...").
template <typename... Parts>
[[noreturn]] void throw_python_error(std::string_view type, Parts&&... parts) {
  throw_error(type, ": ", std::forward<Parts>(parts)...);
}

// Jinja's default Undefined: what a missing variable, key or attribute evaluates to. It renders as "" and is
// falsy, iterates as empty and compares equal only to another Undefined, but arithmetic, attribute access or a
// call on it fails with `message`. `unsafe` marks the sandbox's stand-in for an attribute that may not be used
// (list.append, dict.update, ...): rendering it is harmless, calling it is a SecurityError.
struct Undefined {
  std::string message;
  bool unsafe = false;
  [[noreturn]] void fail() const;
};

struct None {};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  // How deeply lists and dicts nest in it, itself included (Value::list computes it; namespaces count as 0).
  std::uint32_t depth = 1;
};

// A Python dict: keys of any hashable kind, iterated in insertion order. Lookups are linear: template dicts
// (messages, tool schemas) are small.
class Dict {
 public:
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  // Defined below Value: a vector's size() needs its element type complete (clang with libstdc++ insists).
  std::size_t size() const;
  bool empty() const;
  // How deeply lists and dicts nest in it, itself included (at most; an overwritten value is not forgotten).
  std::uint32_t depth() const { return depth_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  std::uint32_t depth_ = 1;
};

// Arguments of a call, as written: f(a, b, key=value).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// An object with attributes but no item or iteration protocol (namespace(), loop, cycler).
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  // The attribute's value, or nullopt when the object has no such attribute.
  virtual std::optional<Value> attribute(std::string_view name) const = 0;
  virtual std::string repr() const = 0;
};

class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(const CallArgs& args) const = 0;
  virtual std::string type_name() const { return "function"; }
  virtual std::string repr() const = 0;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject, kCallable };

  Value() : storage_(Undefined{}) {}
  Value(None) : storage_(None{}) {}
  Value(Undefined undefined) : storage_(std::move(undefined)) {}
  Value(bool b) : storage_(b) {}
  Value(int i) : storage_(static_cast<std::int64_t>(i)) {}
  Value(std::int64_t i) : storage_(i) {}
  Value(std::size_t i) : storage_(static_cast<std::int64_t>(i)) {}
  Value(double f) : storage_(f) {}
  // Strings count against the render's budget (jinja_limits.h) when they are made or copied.
  Value(std::string s) : storage_((charge_string(s.size()), std::move(s))) {}
  Value(std::string_view s) : storage_((charge_string(s.size()), std::string(s))) {}
  Value(const char* s) : Value(std::string_view(s)) {}
  Value(std::shared_ptr<List> list) : storage_(std::move(list)) {}
  Value(std::shared_ptr<Dict> dict) : storage_(std::move(dict)) {}
  Value(std::shared_ptr<Object> object) : storage_(std::move(object)) {}
  Value(std::shared_ptr<const Callable> callable) : storage_(std::move(callable)) {}

  Value(const Value& other) : storage_((other.charge_copy(), other.storage_)) {}
  Value(Value&&) noexcept = default;
  Value& operator=(const Value& other) {
    if (this != &other) {
      other.charge_copy();
      storage_ = other.storage_;
    }
    return *this;
  }
  Value& operator=(Value&&) noexcept = default;
  ~Value() = default;

  static Value undefined(std::string message) { return Value(Undefined{std::move(message), false}); }
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict dict = {});

  Kind kind() const { return static_cast<Kind>(storage_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // bool is a Number in Python (True + 1 == 2).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  // A list or a tuple.
  bool is_list() const { return kind() == Kind::kList; }
  bool is_tuple() const { return is_list() && as_list().is_tuple; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  const Undefined& as_undefined() const { return std::get<Undefined>(storage_); }
  bool as_bool() const { return std::get<bool>(storage_); }
  // The integer value of an int or bool.
  std::int64_t as_int() const { return is_bool() ? as_bool() : std::get<std::int64_t>(storage_); }
  // The value of any number as a double.
  double as_double() const { return is_float() ? std::get<double>(storage_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(storage_); }
  const List& as_list() const { return *std::get<std::shared_ptr<List>>(storage_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(storage_); }
  const std::shared_ptr<Object>& as_object() const { return std::get<std::shared_ptr<Object>>(storage_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(storage_); }

  // Python's bool(value).
  bool truthy() const;
  // Python's str(value), as Jinja prints it ({{ value }}); Undefined prints as "".
  std::string str() const;
  void append_str(std::string& out) const;
  // Python's repr(value): strings quoted, as they appear inside a printed list or dict.
  std::string repr() const;
  // Python's type(value).__name__, for error messages.
  std::string type_name() const;
  // Python's value == other.
  bool equals(const Value& other) const;
  // Python's value is other, for the container and object kinds (which share their data when copied).
  bool is_same_object(const Value& other) const;

 private:
  void charge_copy() const {
    if (is_string()) charge_string(as_string().size());
  }

  std::variant<Undefined, None, bool, std::int64_t, double, std::string, std::shared_ptr<List>, std::shared_ptr<Dict>,
               std::shared_ptr<Object>, std::shared_ptr<const Callable>>
      storage_;
};

// How deeply lists and dicts nest in `value`: 0 for anything else.
std::uint32_t nesting_of(const Value& value);

inline std::size_t Dict::size() const { return entries_.size(); }
inline bool Dict::empty() const { return entries_.empty(); }

// Jinja's namespace(): the one object whose attributes a template may assign ({% set ns.x = 1 %}), which is
// how templates carry state out of a loop body.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::optional<Value> attribute(std::string_view name) const override;
  std::string repr() const override;
  void set(std::string_view name, Value value) { attributes_.set(Value(name), std::move(value)); }
  // Forgets every attribute (the end of a render does, since a namespace may hold itself).
  void clear() { attributes_ = Dict(); }

 private:
  Dict attributes_;
};

}  // namespace kiln::tokenizer::jinja
