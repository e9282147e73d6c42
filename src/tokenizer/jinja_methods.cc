#include "tokenizer/jinja_methods.h"

#include <unordered_map>

#include "tokenizer/jinja_access.h"
#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_strings.h"

namespace kiln::tokenizer::jinja {

namespace {

using MethodFn = Value (*)(const Value& receiver, const CallArgs& args);
using MethodTable = std::unordered_map<std::string_view, MethodFn>;

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> items(parts.begin(), parts.end());
  return Value::list(std::move(items));
}

const std::string& text(const Value& receiver) { return receiver.as_string(); }

void expect_no_args(const char* name, const CallArgs& args) { BoundArgs(name, args, {}); }

Value strip(const Value& s, const CallArgs& args, const char* name, StripSide side) {
  const BoundArgs bound(name, args, {"chars"});
  return Value(py_strip(text(s), bound.string_or_none(0), side));
}

Value split(const Value& s, const CallArgs& args, const char* name, bool from_right) {
  const BoundArgs bound(name, args, {"sep", "maxsplit"});
  const auto separator = bound.string_or_none(0);
  const std::int64_t max_split = bound.int_or(1, -1);
  return string_list(from_right ? py_rsplit(text(s), separator, max_split) : py_split(text(s), separator, max_split));
}

// startswith / endswith: the affix may be a tuple of alternatives.
Value affix_test(const Value& s, const CallArgs& args, const char* name, bool prefix) {
  const BoundArgs bound(name, args, {"affix", "start", "end"}, 1);
  std::string_view subject = text(s);
  if (bound.has(1) || bound.has(2)) {
    const Value sliced = get_slice(
        s, bound.has(1) && !bound.get(1).is_none() ? std::optional(bound.int_or(1, 0)) : std::nullopt,
        bound.has(2) && !bound.get(2).is_none() ? std::optional(bound.int_or(2, 0)) : std::nullopt, std::nullopt);
    return affix_test(sliced, CallArgs{{bound.get(0)}, {}}, name, prefix);
  }
  const Value affix = bound.get(0);
  std::vector<Value> alternatives = affix.is_tuple() ? affix.as_list().items : std::vector<Value>{affix};
  for (const Value& alternative : alternatives) {
    if (!alternative.is_string()) {
      throw_python_error("TypeError", name, " first arg must be str or a tuple of str, not ", alternative.type_name());
    }
    const std::string& a = alternative.as_string();
    if (a.size() <= subject.size() &&
        (prefix ? subject.substr(0, a.size()) == a : subject.substr(subject.size() - a.size()) == a)) {
      return Value(true);
    }
  }
  return Value(false);
}

Value find(const Value& s, const CallArgs& args, const char* name, bool from_right, bool raise_if_missing) {
  const BoundArgs bound(name, args, {"sub", "start", "end"}, 1);
  const Value sub = bound.get(0);
  if (!sub.is_string()) throw_python_error("TypeError", "must be str, not ", sub.type_name());
  auto optional_int = [&bound](std::size_t i) {
    return bound.has(i) && !bound.get(i).is_none() ? std::optional(bound.int_or(i, 0)) : std::nullopt;
  };
  const std::int64_t index = py_find(text(s), sub.as_string(), optional_int(1), optional_int(2), from_right);
  if (index < 0 && raise_if_missing) throw_python_error("ValueError", "substring not found");
  return Value(index);
}

Value pad(const Value& s, const CallArgs& args, const char* name, int align) {
  const BoundArgs bound(name, args, {"width", "fillchar"}, 1);
  const std::string fill = bound.string_or_none(1).value_or(" ");
  return Value(py_pad(text(s), bound.int_or(0, 0), fill, align));
}

Value char_class(const Value& s, const CallArgs& args, const char* name, CharClass char_class) {
  expect_no_args(name, args);
  return Value(py_is(text(s), char_class));
}

// str.format with automatic ({}), numbered ({0}) and named ({name}) fields and !r / !s conversions.
Value format(const Value& s, const CallArgs& args) {
  const std::string& pattern = text(s);
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') throw_python_error("ValueError", "Single '}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const std::size_t close = pattern.find('}', i);
    if (close == std::string::npos) throw_python_error("ValueError", "Single '{' encountered in format string");
    std::string field = pattern.substr(i + 1, close - i - 1);
    i = close;
    if (field.find(':') != std::string::npos) {
      throw_python_error("ValueError", "format specifications are not supported in templates: '{", field, "}'");
    }
    char conversion = 's';
    if (const std::size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = bang + 1 < field.size() ? field[bang + 1] : 's';
      field.resize(bang);
    }
    const Value* value = nullptr;
    if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
      std::size_t index = auto_index;
      if (field.empty()) {
        ++auto_index;
      } else {
        // Saturates: an index too large for any argument list is out of range like any other.
        index = 0;
        for (const char digit : field) {
          if (!std::isdigit(static_cast<unsigned char>(digit))) {
            throw_python_error("KeyError", "'", field, "'");
          }
          index = index > 100'000'000 ? 1'000'000'000 : index * 10 + static_cast<std::size_t>(digit - '0');
        }
      }
      if (index >= args.positional.size()) {
        throw_python_error("IndexError", "Replacement index ", index, " out of range for positional args tuple");
      }
      value = &args.positional[index];
    } else {
      for (const auto& [key, candidate] : args.keyword) {
        if (key == field) value = &candidate;
      }
      if (value == nullptr) throw_python_error("KeyError", "'", field, "'");
    }
    out += conversion == 'r' ? value->repr() : value->str();
    check_string_size(out.size());
  }
  return Value(std::move(out));
}

Value join(const Value& s, const CallArgs& args) {
  const BoundArgs bound("join", args, {"iterable"}, 1);
  std::string out;
  std::size_t index = 0;
  for (const Value& item : iterate(bound.get(0))) {
    if (!item.is_string()) {
      throw_python_error("TypeError", "sequence item ", index, ": expected str instance, ", item.type_name(), " found");
    }
    if (index++ > 0) out += text(s);
    out += item.as_string();
    check_string_size(out.size());
  }
  return Value(std::move(out));
}

Value partition(const Value& s, const CallArgs& args, bool from_right) {
  const BoundArgs bound(from_right ? "rpartition" : "partition", args, {"sep"}, 1);
  const std::string separator = bound.string_or_none(0).value_or("");
  if (separator.empty()) throw_python_error("ValueError", "empty separator");
  const std::string& subject = text(s);
  const std::size_t found = from_right ? subject.rfind(separator) : subject.find(separator);
  if (found == std::string::npos) {
    return from_right ? Value::tuple({Value(""), Value(""), s}) : Value::tuple({s, Value(""), Value("")});
  }
  return Value::tuple(
      {Value(subject.substr(0, found)), Value(separator), Value(subject.substr(found + separator.size()))});
}

const MethodTable& string_methods() {
  static const MethodTable table = {
      {"strip", [](const Value& s, const CallArgs& a) { return strip(s, a, "strip", StripSide::kBoth); }},
      {"lstrip", [](const Value& s, const CallArgs& a) { return strip(s, a, "lstrip", StripSide::kLeft); }},
      {"rstrip", [](const Value& s, const CallArgs& a) { return strip(s, a, "rstrip", StripSide::kRight); }},
      {"split", [](const Value& s, const CallArgs& a) { return split(s, a, "split", false); }},
      {"rsplit", [](const Value& s, const CallArgs& a) { return split(s, a, "rsplit", true); }},
      {"splitlines",
       [](const Value& s, const CallArgs& a) {
         const BoundArgs bound("splitlines", a, {"keepends"});
         return string_list(py_splitlines(text(s), bound.truthy_or(0, false)));
       }},
      {"startswith", [](const Value& s, const CallArgs& a) { return affix_test(s, a, "startswith", true); }},
      {"endswith", [](const Value& s, const CallArgs& a) { return affix_test(s, a, "endswith", false); }},
      {"upper",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("upper", a);
         return Value(py_upper(text(s)));
       }},
      {"lower",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("lower", a);
         return Value(py_lower(text(s)));
       }},
      {"casefold",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("casefold", a);
         return Value(py_casefold(text(s)));
       }},
      {"swapcase",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("swapcase", a);
         return Value(py_swapcase(text(s)));
       }},
      {"title",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("title", a);
         return Value(py_title(text(s)));
       }},
      {"capitalize",
       [](const Value& s, const CallArgs& a) {
         expect_no_args("capitalize", a);
         return Value(py_capitalize(text(s)));
       }},
      {"replace",
       [](const Value& s, const CallArgs& a) {
         const BoundArgs bound("replace", a, {"old", "new", "count"}, 2);
         const Value old_part = bound.get(0), new_part = bound.get(1);
         if (!old_part.is_string() || !new_part.is_string()) {
           throw_python_error("TypeError", "replace() argument must be str");
         }
         return Value(py_replace(text(s), old_part.as_string(), new_part.as_string(), bound.int_or(2, -1)));
       }},
      {"find", [](const Value& s, const CallArgs& a) { return find(s, a, "find", false, false); }},
      {"rfind", [](const Value& s, const CallArgs& a) { return find(s, a, "rfind", true, false); }},
      {"index", [](const Value& s, const CallArgs& a) { return find(s, a, "index", false, true); }},
      {"rindex", [](const Value& s, const CallArgs& a) { return find(s, a, "rindex", true, true); }},
      {"count",
       [](const Value& s, const CallArgs& a) {
         const BoundArgs bound("count", a, {"sub"}, 1);
         const Value sub = bound.get(0);
         if (!sub.is_string()) throw_python_error("TypeError", "must be str, not ", sub.type_name());
         return Value(py_count(text(s), sub.as_string()));
       }},
      {"join", join},
      {"format", format},
      {"isspace", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isspace", CharClass::kSpace); }},
      {"isalpha", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isalpha", CharClass::kAlpha); }},
      {"isdigit", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isdigit", CharClass::kDigit); }},
      {"isdecimal", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isdecimal", CharClass::kDigit); }},
      {"isnumeric", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isnumeric", CharClass::kDigit); }},
      {"isalnum", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isalnum", CharClass::kAlnum); }},
      {"isupper", [](const Value& s, const CallArgs& a) { return char_class(s, a, "isupper", CharClass::kUpper); }},
      {"islower", [](const Value& s, const CallArgs& a) { return char_class(s, a, "islower", CharClass::kLower); }},
      {"center", [](const Value& s, const CallArgs& a) { return pad(s, a, "center", 0); }},
      {"ljust", [](const Value& s, const CallArgs& a) { return pad(s, a, "ljust", -1); }},
      {"rjust", [](const Value& s, const CallArgs& a) { return pad(s, a, "rjust", 1); }},
      {"zfill",
       [](const Value& s, const CallArgs& a) {
         const BoundArgs bound("zfill", a, {"width"}, 1);
         const std::string& subject = text(s);
         const bool signed_number = !subject.empty() && (subject[0] == '-' || subject[0] == '+');
         const std::string padded =
             py_pad(signed_number ? subject.substr(1) : subject, bound.int_or(0, 0) - (signed_number ? 1 : 0), "0", 1);
         return Value(signed_number ? subject.substr(0, 1) + padded : padded);
       }},
      {"removeprefix",
       [](const Value& s, const CallArgs& a) {
         const std::string affix = BoundArgs("removeprefix", a, {"prefix"}, 1).string_or_none(0).value_or("");
         const std::string& subject = text(s);
         return Value(subject.starts_with(affix) ? subject.substr(affix.size()) : subject);
       }},
      {"removesuffix",
       [](const Value& s, const CallArgs& a) {
         const std::string affix = BoundArgs("removesuffix", a, {"suffix"}, 1).string_or_none(0).value_or("");
         const std::string& subject = text(s);
         return Value(subject.ends_with(affix) && !affix.empty() ? subject.substr(0, subject.size() - affix.size())
                                                                 : subject);
       }},
      {"partition", [](const Value& s, const CallArgs& a) { return partition(s, a, false); }},
      {"rpartition", [](const Value& s, const CallArgs& a) { return partition(s, a, true); }},
  };
  return table;
}

const MethodTable& dict_methods() {
  static const MethodTable table = {
      {"items",
       [](const Value& d, const CallArgs& a) {
         expect_no_args("items", a);
         std::vector<Value> pairs;
         for (const auto& [key, value] : d.as_dict().entries()) pairs.push_back(Value::tuple({key, value}));
         return Value::list(std::move(pairs));
       }},
      {"keys",
       [](const Value& d, const CallArgs& a) {
         expect_no_args("keys", a);
         return Value::list(iterate(d));
       }},
      {"values",
       [](const Value& d, const CallArgs& a) {
         expect_no_args("values", a);
         std::vector<Value> values;
         for (const auto& entry : d.as_dict().entries()) values.push_back(entry.second);
         return Value::list(std::move(values));
       }},
      {"get",
       [](const Value& d, const CallArgs& a) {
         const BoundArgs bound("get", a, {"key", "default"}, 1);
         const Value* found = d.as_dict().find(bound.get(0));
         return found != nullptr ? *found : bound.get_or(1, Value(None{}));
       }},
      {"copy",
       [](const Value& d, const CallArgs& a) {
         expect_no_args("copy", a);
         return Value::dict(d.as_dict());
       }},
  };
  return table;
}

const MethodTable& list_methods() {
  static const MethodTable table = {
      {"index",
       [](const Value& l, const CallArgs& a) {
         const BoundArgs bound("index", a, {"value"}, 1);
         const auto& items = l.as_list().items;
         for (std::size_t i = 0; i < items.size(); ++i) {
           if (items[i].equals(bound.get(0))) return Value(i);
         }
         throw_python_error("ValueError", bound.get(0).repr(), " is not in list");
       }},
      {"count",
       [](const Value& l, const CallArgs& a) {
         const BoundArgs bound("count", a, {"value"}, 1);
         std::int64_t count = 0;
         for (const Value& item : l.as_list().items) count += item.equals(bound.get(0)) ? 1 : 0;
         return Value(count);
       }},
      {"copy",
       [](const Value& l, const CallArgs& a) {
         expect_no_args("copy", a);
         return Value::list(l.as_list().items);
       }},
  };
  return table;
}

// The methods Jinja2's ImmutableSandboxedEnvironment refuses: they would mutate a list or dict.
bool is_mutating(const Value& receiver, std::string_view name) {
  static const std::unordered_map<std::string_view, bool> list_mutators = {
      {"append", true}, {"clear", true},  {"extend", true},  {"insert", true},
      {"pop", true},    {"remove", true}, {"reverse", true}, {"sort", true}};
  static const std::unordered_map<std::string_view, bool> dict_mutators = {
      {"clear", true}, {"pop", true}, {"popitem", true}, {"setdefault", true}, {"update", true}};
  if (receiver.is_list() && !receiver.is_tuple()) return list_mutators.contains(name);
  if (receiver.is_dict()) return dict_mutators.contains(name);
  return false;
}

const MethodTable* methods_of(const Value& receiver) {
  if (receiver.is_string()) return &string_methods();
  if (receiver.is_dict()) return &dict_methods();
  if (receiver.is_list()) return &list_methods();
  return nullptr;
}

class BoundMethod : public Callable {
 public:
  BoundMethod(Value receiver, std::string_view name) : receiver_(std::move(receiver)), name_(name) {}
  Value call(const CallArgs& args) const override { return call_method(receiver_, name_, args); }
  std::string type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override {
    return "<built-in method " + name_ + " of " + receiver_.type_name() + " object>";
  }

 private:
  Value receiver_;
  std::string name_;
};

}  // namespace

MethodSafety find_method(const Value& receiver, std::string_view name) {
  if (is_mutating(receiver, name)) return MethodSafety::kUnsafe;
  const MethodTable* table = methods_of(receiver);
  return table != nullptr && table->contains(name) ? MethodSafety::kSafe : MethodSafety::kNone;
}

Value call_method(const Value& receiver, std::string_view name, const CallArgs& args) {
  const MethodTable* table = methods_of(receiver);
  const auto found = table != nullptr ? table->find(name) : MethodTable::const_iterator();
  if (table == nullptr || found == table->end()) {
    throw_python_error("AttributeError", "'", receiver.type_name(), "' object has no attribute '", name, "'");
  }
  return found->second(receiver, args);
}

Value bind_method(const Value& receiver, std::string_view name) {
  return Value(std::shared_ptr<const Callable>(std::make_shared<BoundMethod>(receiver, name)));
}

}  // namespace kiln::tokenizer::jinja
