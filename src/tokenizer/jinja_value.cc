#include "tokenizer/jinja_value.h"

#include <algorithm>

#include "tokenizer/jinja_strings.h"

namespace kiln::tokenizer::jinja {

void Undefined::fail() const { throw_python_error(unsafe ? "SecurityError" : "UndefinedError", message); }

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : entries_) {
    if (k.equals(key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

std::uint32_t nesting_of(const Value& value) {
  if (value.is_list()) return value.as_list().depth;
  if (value.is_dict()) return value.as_dict().depth();
  return 0;
}

namespace {

std::uint32_t list_depth(const std::vector<Value>& items) {
  std::uint32_t deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, nesting_of(item));
  check_value_depth(deepest + 1);
  return deepest + 1;
}

}  // namespace

void Dict::set(Value key, Value value) {
  const std::uint32_t depth = 1 + std::max(nesting_of(key), nesting_of(value));
  if (depth > depth_) {
    check_value_depth(depth);
    depth_ = depth;
  }
  for (auto& [k, v] : entries_) {
    if (k.equals(key)) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

Value Value::list(std::vector<Value> items) {
  charge_items(items.size());
  const std::uint32_t depth = list_depth(items);
  return Value(std::make_shared<List>(List{std::move(items), false, depth}));
}

Value Value::tuple(std::vector<Value> items) {
  charge_items(items.size());
  const std::uint32_t depth = list_depth(items);
  return Value(std::make_shared<List>(List{std::move(items), true, depth}));
}

Value Value::dict(Dict dict) { return Value(std::make_shared<Dict>(std::move(dict))); }

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return as_bool();
    case Kind::kInt: return as_int() != 0;
    case Kind::kFloat: return as_double() != 0.0;
    case Kind::kString: return !as_string().empty();
    case Kind::kList: return !as_list().items.empty();
    case Kind::kDict: return !as_dict().empty();
    case Kind::kObject:
    case Kind::kCallable: return true;
  }
  return false;
}

void Value::append_str(std::string& out) const {
  switch (kind()) {
    case Kind::kUndefined: return;
    case Kind::kString: out += as_string(); return;
    default: out += repr(); return;
  }
}

std::string Value::str() const {
  std::string out;
  append_str(out);
  return out;
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "None";
    case Kind::kBool: return as_bool() ? "True" : "False";
    case Kind::kInt: return std::to_string(as_int());
    case Kind::kFloat: return py_float_repr(as_double());
    case Kind::kString: return py_string_repr(as_string());
    case Kind::kList: {
      const List& list = as_list();
      std::string out = list.is_tuple ? "(" : "[";
      for (std::size_t i = 0; i < list.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += list.items[i].repr();
      }
      if (list.is_tuple && list.items.size() == 1) out += ",";
      out += list.is_tuple ? ")" : "]";
      return out;
    }
    case Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : as_dict().entries()) {
        if (!first) out += ", ";
        first = false;
        out += key.repr() + ": " + value.repr();
      }
      return out + "}";
    }
    case Kind::kObject: return as_object()->repr();
    case Kind::kCallable: return as_callable().repr();
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return as_list().is_tuple ? "tuple" : "list";
    case Kind::kDict: return "dict";
    case Kind::kObject: return as_object()->type_name();
    case Kind::kCallable: return as_callable().type_name();
  }
  return "object";
}

bool Value::equals(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (is_float() || other.is_float()) return as_double() == other.as_double();
    return as_int() == other.as_int();
  }
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return as_string() == other.as_string();
    case Kind::kList: {
      const List& a = as_list();
      const List& b = other.as_list();
      if (a.is_tuple != b.is_tuple || a.items.size() != b.items.size()) return false;
      for (std::size_t i = 0; i < a.items.size(); ++i) {
        if (!a.items[i].equals(b.items[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      const Dict& a = as_dict();
      const Dict& b = other.as_dict();
      if (a.size() != b.size()) return false;
      for (const auto& [key, value] : a.entries()) {
        const Value* found = b.find(key);
        if (found == nullptr || !found->equals(value)) return false;
      }
      return true;
    }
    case Kind::kObject: return as_object() == other.as_object();
    case Kind::kCallable: return &as_callable() == &other.as_callable();
    default: return false;
  }
}

bool Value::is_same_object(const Value& other) const {
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kList: return &as_list() == &other.as_list();
    case Kind::kDict: return &as_dict() == &other.as_dict();
    case Kind::kObject: return as_object() == other.as_object();
    case Kind::kCallable: return &as_callable() == &other.as_callable();
    default: return false;
  }
}

std::optional<Value> Namespace::attribute(std::string_view name) const {
  if (const Value* value = attributes_.find(name)) return *value;
  return std::nullopt;
}

std::string Namespace::repr() const {
  // A namespace may hold itself ({% set ns.me = ns %}): the bound on nesting ends the recursion.
  const DepthGuard nesting;
  return "<Namespace " + Value::dict(attributes_).repr() + ">";
}

}  // namespace kiln::tokenizer::jinja
