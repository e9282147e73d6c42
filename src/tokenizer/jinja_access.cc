#include "tokenizer/jinja_access.h"

#include "tokenizer/jinja_methods.h"
#include "tokenizer/jinja_strings.h"
#include "tokenizer/jinja_unicode.h"

namespace kiln::tokenizer::jinja {

namespace {

// Jinja's object_type_repr: "dict object", "None", "jinja2.utils.Namespace object".
std::string object_description(const Value& object) {
  if (object.is_none()) return "None";
  return object.type_name() + " object";
}

Value missing_attribute(const Value& object, std::string_view name) {
  return Value::undefined(concat("'", object_description(object), "' has no attribute '", name, "'"));
}

Value missing_element(const Value& object, const Value& key) {
  return Value::undefined(concat(object_description(object), " has no element ", key.repr()));
}

Value unsafe_attribute(const Value& object, std::string_view name) {
  return Value(
      Undefined{concat("access to attribute '", name, "' of '", object.type_name(), "' object is unsafe."), true});
}

// Python's index normalization: negative counts from the end; nullopt when out of range.
std::optional<std::size_t> normalize_index(std::int64_t index, std::size_t size) {
  if (index < 0) index += static_cast<std::int64_t>(size);
  if (index < 0 || index >= static_cast<std::int64_t>(size)) return std::nullopt;
  return static_cast<std::size_t>(index);
}

template <typename Sequence>
Sequence slice_sequence(const Sequence& items, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                        std::int64_t step) {
  // PySlice_AdjustIndices.
  const auto n = static_cast<std::int64_t>(items.size());
  auto adjust = [n, step](std::optional<std::int64_t> index, std::int64_t fallback) {
    if (!index) return fallback;
    std::int64_t i = *index;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const std::int64_t first = adjust(start, step < 0 ? n - 1 : 0);
  const std::int64_t last = adjust(stop, step < 0 ? -1 : n);
  Sequence out;
  if (step > 0) {
    for (std::int64_t i = first; i < last; i += step) out.push_back(items[static_cast<std::size_t>(i)]);
  } else {
    for (std::int64_t i = first; i > last; i += step) out.push_back(items[static_cast<std::size_t>(i)]);
  }
  return out;
}

}  // namespace

Value get_attribute(const Value& object, std::string_view name) {
  if (object.is_undefined()) object.as_undefined().fail();
  if (!name.empty() && name[0] == '_') return unsafe_attribute(object, name);
  switch (object.kind()) {
    case Value::Kind::kDict:
    case Value::Kind::kString:
    case Value::Kind::kList:
      switch (find_method(object, name)) {
        case MethodSafety::kSafe: return bind_method(object, name);
        case MethodSafety::kUnsafe: return unsafe_attribute(object, name);
        case MethodSafety::kNone: break;
      }
      if (object.is_dict()) {
        if (const Value* value = object.as_dict().find(name)) return *value;
      }
      return missing_attribute(object, name);
    case Value::Kind::kObject:
      if (auto value = object.as_object()->attribute(name)) return *value;
      return missing_attribute(object, name);
    default: return missing_attribute(object, name);
  }
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) object.as_undefined().fail();
  switch (object.kind()) {
    case Value::Kind::kDict:
      if (const Value* value = object.as_dict().find(key)) return *value;
      break;
    case Value::Kind::kList:
      if (key.is_int() || key.is_bool()) {
        const auto& items = object.as_list().items;
        if (auto index = normalize_index(key.as_int(), items.size())) return items[*index];
      }
      break;
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        const std::u32string code_points = decode_utf8(object.as_string());
        if (auto index = normalize_index(key.as_int(), code_points.size())) {
          return Value(encode_utf8(std::u32string_view(code_points).substr(*index, 1)));
        }
      }
      break;
    default: break;
  }
  // The item is missing: a string key falls back to the attribute, as Jinja's getitem does.
  if (key.is_string()) return get_attribute(object, key.as_string());
  return missing_element(object, key);
}

Value get_slice(const Value& object, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                std::optional<std::int64_t> step) {
  if (object.is_undefined()) object.as_undefined().fail();
  const std::int64_t stride = step.value_or(1);
  if (stride == 0) throw_python_error("ValueError", "slice step cannot be zero");
  if (object.is_string()) {
    return Value(encode_utf8(slice_sequence(decode_utf8(object.as_string()), start, stop, stride)));
  }
  if (object.is_list()) {
    std::vector<Value> items = slice_sequence(object.as_list().items, start, stop, stride);
    return object.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  // Jinja compiles a slice to Python's own obj[a:b], not to its forgiving getitem.
  if (object.is_dict()) throw_python_error("TypeError", "unhashable type: 'slice'");
  throw_python_error("TypeError", "'", object.type_name(), "' object is not subscriptable");
}

std::vector<Value> iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return value.as_list().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(value.as_dict().size());
      for (const auto& entry : value.as_dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> characters;
      std::string character;
      const std::u32string code_points = decode_utf8(value.as_string());
      charge_items(code_points.size());
      for (char32_t c : code_points) {
        character.clear();
        append_utf8(character, c);
        characters.emplace_back(character);
      }
      return characters;
    }
    default: throw_python_error("TypeError", "'", value.type_name(), "' object is not iterable");
  }
}

std::int64_t length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<std::int64_t>(code_point_count(value.as_string()));
    case Value::Kind::kList: return static_cast<std::int64_t>(value.as_list().items.size());
    case Value::Kind::kDict: return static_cast<std::int64_t>(value.as_dict().size());
    default: throw_python_error("TypeError", "object of type '", value.type_name(), "' has no len()");
  }
}

}  // namespace kiln::tokenizer::jinja
