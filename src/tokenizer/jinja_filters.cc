#include "tokenizer/jinja_filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "tokenizer/jinja_access.h"
#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_json.h"
#include "tokenizer/jinja_methods.h"
#include "tokenizer/jinja_strings.h"
#include "tokenizer/jinja_tests.h"
#include "tokenizer/jinja_unicode.h"

namespace kiln::tokenizer::jinja {

namespace {

// ---- helpers shared by several filters ----

// Jinja's make_attrgetter: "a.b.0" looks up each part as an item (then attribute); integers index.
Value lookup_attribute(const Value& item, const std::string& path, const Value& fallback) {
  Value current = item;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = std::min(path.find('.', start), path.size());
    const std::string part = path.substr(start, dot - start);
    const bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? get_item(current, Value(static_cast<std::int64_t>(std::strtoll(part.c_str(), nullptr, 10))))
                      : get_item(current, Value(part));
    if (current.is_undefined() && !fallback.is_undefined()) return fallback;
    start = dot + 1;
  }
  return current;
}

// Sort keys compare case-insensitively unless asked otherwise (Jinja's ignore_case).
Value sort_key(const Value& value, bool case_sensitive) {
  if (!case_sensitive && value.is_string()) return Value(py_lower(value.as_string()));
  return value;
}

// Selects the key of each item for sort, unique, min, max: the item itself or its attribute.
std::vector<Value> sort_keys(const std::vector<Value>& items, const BoundArgs& bound, std::size_t case_index,
                             std::size_t attribute_index) {
  const bool case_sensitive = bound.truthy_or(case_index, false);
  const std::optional<std::string> attribute = bound.has(attribute_index) && !bound.get(attribute_index).is_none()
                                                   ? std::optional<std::string>(bound.get(attribute_index).str())
                                                   : std::nullopt;
  std::vector<Value> keys;
  keys.reserve(items.size());
  for (const Value& item : items) {
    keys.push_back(sort_key(attribute ? lookup_attribute(item, *attribute, Value()) : item, case_sensitive));
  }
  return keys;
}

std::vector<std::size_t> sorted_order(const std::vector<Value>& keys, bool reverse) {
  std::vector<std::size_t> order(keys.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&keys, reverse](std::size_t a, std::size_t b) {
    return reverse ? less_than(keys[b], keys[a]) : less_than(keys[a], keys[b]);
  });
  return order;
}

CallArgs rest_args(const CallArgs& args, std::size_t skip) {
  CallArgs rest;
  if (args.positional.size() > skip)
    rest.positional.assign(args.positional.begin() + static_cast<long>(skip), args.positional.end());
  rest.keyword = args.keyword;
  return rest;
}

// select / reject / selectattr / rejectattr.
Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep_matching) {
  const char* name =
      by_attribute ? (keep_matching ? "selectattr" : "rejectattr") : (keep_matching ? "select" : "reject");
  std::size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) throw_python_error("TypeError", name, "() missing required argument 'attribute'");
    attribute = args.positional[next++].str();
  }
  TestFn test = nullptr;
  if (next < args.positional.size()) {
    const std::string test_name = args.positional[next++].str();
    test = find_test(test_name);
    if (test == nullptr) throw_python_error("TemplateRuntimeError", "No test named '", test_name, "'.");
  }
  const CallArgs test_args = rest_args(args, next);
  std::vector<Value> kept;
  // Jinja loops only `if value`: None, 0 and "" select nothing rather than fail.
  if (!input.truthy()) return Value::list();
  for (const Value& item : iterate(input)) {
    const Value subject = by_attribute ? lookup_attribute(item, attribute, Value()) : item;
    const bool matches = test != nullptr ? test(subject, test_args) : subject.truthy();
    if (matches == keep_matching) kept.push_back(item);
  }
  return Value::list(std::move(kept));
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python's float(str): surrounding whitespace and underscores between digits allowed, inf/nan spelled out.
std::optional<double> parse_python_float(const std::string& text) {
  const std::string stripped = py_strip(text, std::nullopt, StripSide::kBoth);
  std::string cleaned;
  for (std::size_t i = 0; i < stripped.size(); ++i) {
    if (stripped[i] == '_' && i > 0 && i + 1 < stripped.size() &&
        std::isdigit(static_cast<unsigned char>(stripped[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(stripped[i + 1]))) {
      continue;
    }
    cleaned += stripped[i];
  }
  if (cleaned.empty() || cleaned.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return value;
}

// Python's int(str, base): surrounding whitespace, a sign, underscores between digits, and the 0x / 0o / 0b
// prefix of base 16 / 8 / 2 (base 0 takes the base from the prefix).
std::optional<std::int64_t> parse_python_int(const std::string& text, int base) {
  const std::string stripped = py_strip(text, std::nullopt, StripSide::kBoth);
  std::size_t i = 0;
  bool negative = false;
  if (i < stripped.size() && (stripped[i] == '+' || stripped[i] == '-')) negative = stripped[i++] == '-';
  auto has_prefix = [&](char letter) {
    return i + 1 < stripped.size() && stripped[i] == '0' && (stripped[i + 1] | 0x20) == letter;
  };
  const int prefixed_base = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 0;
  if (prefixed_base != 0 && (base == 0 || base == prefixed_base)) {
    base = prefixed_base;
    i += 2;
    if (i < stripped.size() && stripped[i] == '_') ++i;
  } else if (base == 0) {
    base = 10;
    // Base 0 refuses decimal numbers with leading zeros ("007"), as Python source does.
    if (i + 1 < stripped.size() && stripped[i] == '0' && stripped.find_first_not_of("0_", i) != std::string::npos) {
      return std::nullopt;
    }
  }
  if (base < 2 || base > 36 || i >= stripped.size()) return std::nullopt;
  std::int64_t value = 0;
  bool previous_digit = false;
  for (; i < stripped.size(); ++i) {
    const char c = stripped[i];
    if (c == '_' && previous_digit && i + 1 < stripped.size() && stripped[i + 1] != '_') {
      previous_digit = false;
      continue;
    }
    const int digit = c >= '0' && c <= '9'                     ? c - '0'
                      : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10
                                                               : 99;
    if (digit >= base) return std::nullopt;
    value = value * base + digit;
    previous_digit = true;
  }
  if (!previous_digit) return std::nullopt;
  return negative ? -value : value;
}

Value round_value(const Value& value, std::int64_t precision, const std::string& method) {
  if (!value.is_number())
    throw_python_error("TypeError", "type ", value.type_name(), " doesn't define __round__ method");
  const double x = value.as_double();
  if (method == "common") {
    // Python's round(): correctly rounded, ties to even, which printf also does.
    if (!value.is_float()) return Value(value.as_int());
    char buffer[512];
    std::snprintf(buffer, sizeof(buffer), "%.*f", static_cast<int>(std::clamp<std::int64_t>(precision, 0, 300)), x);
    return Value(std::strtod(buffer, nullptr));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value(std::ceil(x * scale) / scale);
  if (method == "floor") return Value(std::floor(x * scale) / scale);
  throw_python_error("FilterArgumentError", "method must be common, ceil or floor");
}

std::string indent_text(const std::string& text, const Value& width, bool first, bool blank) {
  const std::string indention =
      width.is_string() ? width.as_string()
                        : std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, width.as_int())), ' ');
  // Jinja appends a newline so that splitlines() keeps a trailing empty line.
  const std::vector<std::string> lines = py_splitlines(text + "\n", false);
  charge_string(saturating_product(indention.size(), lines.size()) + text.size());
  std::string out;
  if (blank) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indention;
      out += lines[i];
    }
  } else if (!lines.empty()) {
    out = lines[0];
    for (std::size_t i = 1; i < lines.size(); ++i) out += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  return first ? indention + out : out;
}

// Jinja's title filter capitalizes each word, words being split at whitespace, '-', and opening brackets:
// word[0].upper() + word[1:].lower().
std::string jinja_title(const std::string& text) {
  std::string out;
  std::u32string word;
  auto flush_word = [&out, &word]() {
    if (word.empty()) return;
    out += py_upper(encode_utf8(word.substr(0, 1))) + py_lower(encode_utf8(word.substr(1)));
    word.clear();
  };
  for (char32_t c : decode_utf8(text)) {
    if (is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<') {
      flush_word();
      append_utf8(out, c);
    } else {
      word.push_back(c);
    }
  }
  flush_word();
  return out;
}

std::int64_t word_count(const std::string& text) {
  std::int64_t count = 0;
  bool in_word = false;
  for (char32_t c : decode_utf8(text)) {
    const bool word_char = is_alnum(c) || c == '_';
    if (word_char && !in_word) ++count;
    in_word = word_char;
  }
  return count;
}

// ---- the filters ----

Value filter_abs(const Value& v, const CallArgs& a) {
  BoundArgs("abs", a, {});
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) return Value(static_cast<std::int64_t>(std::llabs(v.as_int())));
  throw_python_error("TypeError", "bad operand type for abs(): '", v.type_name(), "'");
}

Value filter_attr(const Value& v, const CallArgs& a) {
  const std::string name = BoundArgs("attr", a, {"name"}, 1).get(0).str();
  if (v.is_undefined()) v.as_undefined().fail();
  // Only the attribute, never the item: {'a': 1} | attr('a') is undefined.
  if (v.is_object()) {
    if (auto value = v.as_object()->attribute(name)) return *value;
  } else if (find_method(v, name) == MethodSafety::kSafe) {
    return bind_method(v, name);
  }
  return Value::undefined(concat("'", v.type_name(), " object' has no attribute '", name, "'"));
}

Value filter_batch(const Value& v, const CallArgs& a) {
  const BoundArgs bound("batch", a, {"linecount", "fill_with"}, 1);
  const std::int64_t size = bound.int_or(0, 1);
  if (size <= 0) throw_python_error("ValueError", "batch size must be positive");
  std::vector<Value> batches, current;
  for (const Value& item : iterate(v)) {
    current.push_back(item);
    if (static_cast<std::int64_t>(current.size()) == size) batches.push_back(Value::list(std::exchange(current, {})));
  }
  if (!current.empty()) {
    if (bound.has(1) && !bound.get(1).is_none()) {
      charge_items(static_cast<std::size_t>(size));
      while (static_cast<std::int64_t>(current.size()) < size) current.push_back(bound.get(1));
    }
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(batches));
}

Value filter_capitalize(const Value& v, const CallArgs& a) {
  BoundArgs("capitalize", a, {});
  return Value(py_capitalize(v.str()));
}

Value filter_center(const Value& v, const CallArgs& a) {
  const BoundArgs bound("center", a, {"width"});
  return Value(py_pad(v.str(), bound.int_or(0, 80), " ", 0));
}

Value filter_default(const Value& v, const CallArgs& a) {
  const BoundArgs bound("default", a, {"default_value", "boolean"});
  if (v.is_undefined() || (bound.truthy_or(1, false) && !v.truthy())) return bound.get_or(0, Value(""));
  return v;
}

Value filter_dictsort(const Value& v, const CallArgs& a) {
  const BoundArgs bound("dictsort", a, {"case_sensitive", "by", "reverse"});
  if (v.is_undefined()) v.as_undefined().fail();
  if (!v.is_dict()) throw_python_error("AttributeError", "'", v.type_name(), "' object has no attribute 'items'");
  const std::string by = bound.string_or_none(1).value_or("key");
  if (by != "key" && by != "value")
    throw_python_error("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
  std::vector<Value> pairs, keys;
  for (const auto& [key, value] : v.as_dict().entries()) {
    pairs.push_back(Value::tuple({key, value}));
    keys.push_back(sort_key(by == "key" ? key : value, bound.truthy_or(0, false)));
  }
  std::vector<Value> sorted;
  for (std::size_t i : sorted_order(keys, bound.truthy_or(2, false))) sorted.push_back(pairs[i]);
  return Value::list(std::move(sorted));
}

Value filter_escape(const Value& v, const CallArgs& a) {
  BoundArgs("escape", a, {});
  return Value(html_escape(v.str()));
}

Value filter_first(const Value& v, const CallArgs& a) {
  BoundArgs("first", a, {});
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(const Value& v, const CallArgs& a) {
  BoundArgs("last", a, {});
  if (!v.is_string() && !v.is_list() && !v.is_dict() && !v.is_undefined()) {
    throw_python_error("TypeError", "'", v.type_name(), "' object is not reversible");
  }
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value filter_float(const Value& v, const CallArgs& a) {
  const BoundArgs bound("float", a, {"default"});
  const Value fallback = bound.get_or(0, Value(0.0));
  if (v.is_undefined()) v.as_undefined().fail();
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    if (auto parsed = parse_python_float(v.as_string())) return Value(*parsed);
  }
  return fallback;
}

Value filter_format(const Value& v, const CallArgs& a) {
  if (!a.positional.empty() && !a.keyword.empty()) {
    throw_python_error("FilterArgumentError", "can't handle positional and keyword arguments at the same time");
  }
  if (!a.keyword.empty()) {
    Dict mapping;
    for (const auto& [key, value] : a.keyword) mapping.set(Value(key), value);
    return Value(percent_format(v.str(), Value::dict(std::move(mapping))));
  }
  return Value(percent_format(v.str(), Value::tuple(a.positional)));
}

Value filter_groupby(const Value& v, const CallArgs& a) {
  const BoundArgs bound("groupby", a, {"attribute", "default", "case_sensitive"}, 1);
  const std::string attribute = bound.get(0).str();
  const Value fallback = bound.get_or(1, Value());
  const bool case_sensitive = bound.truthy_or(2, false);
  const std::vector<Value> items = iterate(v);
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(sort_key(lookup_attribute(item, attribute, fallback), case_sensitive));
  std::vector<Value> groups;
  const std::vector<std::size_t> order = sorted_order(keys, false);
  for (std::size_t i = 0; i < order.size();) {
    std::vector<Value> members;
    std::size_t j = i;
    while (j < order.size() && keys[order[j]].equals(keys[order[i]])) members.push_back(items[order[j++]]);
    // The group is named by its first member's own value, not the case-folded key.
    groups.push_back(
        Value::tuple({lookup_attribute(members.front(), attribute, fallback), Value::list(std::move(members))}));
    i = j;
  }
  return Value::list(std::move(groups));
}

Value filter_indent(const Value& v, const CallArgs& a) {
  const BoundArgs bound("indent", a, {"width", "first", "blank"});
  const Value width = bound.get_or(0, Value(4));
  if (!width.is_string() && !width.is_int() && !width.is_bool()) {
    throw_python_error("TypeError", "can't multiply sequence by non-int of type '", width.type_name(), "'");
  }
  // Jinja appends "\n" to the value and splits its lines: only strings survive that.
  if (v.is_undefined()) v.as_undefined().fail();
  if (v.is_list() && !v.is_tuple()) {
    throw_python_error("AttributeError", "'list' object has no attribute 'splitlines'");
  }
  if (v.is_tuple()) throw_python_error("TypeError", "can only concatenate tuple (not \"str\") to tuple");
  if (!v.is_string()) {
    throw_python_error("TypeError", "unsupported operand type(s) for +=: '", v.type_name(), "' and 'str'");
  }
  return Value(indent_text(v.str(), width, bound.truthy_or(1, false), bound.truthy_or(2, false)));
}

Value filter_int(const Value& v, const CallArgs& a) {
  const BoundArgs bound("int", a, {"default", "base"});
  const Value fallback = bound.get_or(0, Value(0));
  if (v.is_undefined()) v.as_undefined().fail();
  if (v.is_float())
    return std::isfinite(v.as_double()) ? Value(static_cast<std::int64_t>(std::trunc(v.as_double()))) : fallback;
  if (v.is_number()) return Value(v.as_int());
  if (v.is_string()) {
    if (auto parsed = parse_python_int(v.as_string(), static_cast<int>(bound.int_or(1, 10)))) return Value(*parsed);
    // Jinja falls back to int(float(value)).
    if (auto parsed = parse_python_float(v.as_string()); parsed && std::isfinite(*parsed)) {
      return Value(static_cast<std::int64_t>(std::trunc(*parsed)));
    }
  }
  return fallback;
}

Value filter_items(const Value& v, const CallArgs& a) {
  BoundArgs("items", a, {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) throw_python_error("TypeError", "Can only get item pairs from a mapping.");
  return call_method(v, "items", {});
}

Value filter_join(const Value& v, const CallArgs& a) {
  const BoundArgs bound("join", a, {"d", "attribute"});
  const std::string separator = bound.get_or(0, Value("")).str();
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    check_string_size(out.size());
    (bound.has(1) && !bound.get(1).is_none() ? lookup_attribute(item, bound.get(1).str(), Value()) : item)
        .append_str(out);
  }
  return Value(std::move(out));
}

Value filter_length(const Value& v, const CallArgs& a) {
  BoundArgs("length", a, {});
  return Value(length(v));
}

Value filter_list(const Value& v, const CallArgs& a) {
  BoundArgs("list", a, {});
  return Value::list(iterate(v));
}

Value filter_lower(const Value& v, const CallArgs& a) {
  BoundArgs("lower", a, {});
  return Value(py_lower(v.str()));
}

Value filter_map(const Value& v, const CallArgs& a) {
  std::optional<std::string> attribute;
  Value fallback;
  for (const auto& [key, value] : a.keyword) {
    if (key == "attribute") attribute = value.str();
    if (key == "default") fallback = value;
  }
  std::vector<Value> mapped;
  if (!v.truthy()) return Value::list();  // Jinja maps only `if value`
  if (attribute && a.positional.empty()) {
    for (const Value& item : iterate(v)) mapped.push_back(lookup_attribute(item, *attribute, fallback));
    return Value::list(std::move(mapped));
  }
  if (a.positional.empty()) throw_python_error("FilterArgumentError", "map requires a filter argument");
  const std::string name = a.positional[0].str();
  const FilterFn filter = find_filter(name);
  if (filter == nullptr) throw_python_error("TemplateRuntimeError", "No filter named '", name, "'.");
  const CallArgs filter_args = rest_args(a, 1);
  for (const Value& item : iterate(v)) mapped.push_back(filter(item, filter_args));
  return Value::list(std::move(mapped));
}

Value min_max(const Value& v, const CallArgs& a, bool maximum) {
  const BoundArgs bound(maximum ? "max" : "min", a, {"case_sensitive", "attribute"});
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const std::vector<Value> keys = sort_keys(items, bound, 0, 1);
  std::size_t best = 0;
  for (std::size_t i = 1; i < items.size(); ++i) {
    if (maximum ? greater_than(keys[i], keys[best]) : less_than(keys[i], keys[best])) best = i;
  }
  return items[best];
}

Value filter_pprint(const Value& v, const CallArgs& a) {
  BoundArgs("pprint", a, {});
  return Value(v.repr());
}

Value filter_replace(const Value& v, const CallArgs& a) {
  const BoundArgs bound("replace", a, {"old", "new", "count"}, 2);
  const std::int64_t count = bound.has(2) && !bound.get(2).is_none() ? bound.int_or(2, -1) : -1;
  return Value(py_replace(v.str(), bound.get(0).str(), bound.get(1).str(), count));
}

Value filter_reverse(const Value& v, const CallArgs& a) {
  BoundArgs("reverse", a, {});
  if (v.is_string()) {
    std::u32string code_points = decode_utf8(v.as_string());
    std::reverse(code_points.begin(), code_points.end());
    return Value(encode_utf8(code_points));
  }
  if (!v.is_list() && !v.is_dict() && !v.is_undefined()) {
    throw_python_error("FilterArgumentError", "argument must be iterable");
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value filter_round(const Value& v, const CallArgs& a) {
  const BoundArgs bound("round", a, {"precision", "method"});
  return round_value(v, bound.int_or(0, 0), bound.string_or_none(1).value_or("common"));
}

Value filter_safe(const Value& v, const CallArgs& a) {
  BoundArgs("safe", a, {});
  return v.is_string() ? v : Value(v.str());
}

Value filter_sort(const Value& v, const CallArgs& a) {
  const BoundArgs bound("sort", a, {"reverse", "case_sensitive", "attribute"});
  const std::vector<Value> items = iterate(v);
  const std::vector<Value> keys = sort_keys(items, bound, 1, 2);
  std::vector<Value> sorted;
  for (std::size_t i : sorted_order(keys, bound.truthy_or(0, false))) sorted.push_back(items[i]);
  return Value::list(std::move(sorted));
}

Value filter_string(const Value& v, const CallArgs& a) {
  BoundArgs("string", a, {});
  return v.is_string() ? v : Value(v.str());
}

Value filter_sum(const Value& v, const CallArgs& a) {
  const BoundArgs bound("sum", a, {"attribute", "start"});
  Value total = bound.get_or(1, Value(0));
  for (const Value& item : iterate(v)) {
    total = apply_binary(
        BinaryOp::kAdd, total,
        bound.has(0) && !bound.get(0).is_none() ? lookup_attribute(item, bound.get(0).str(), Value()) : item);
  }
  return total;
}

Value filter_title(const Value& v, const CallArgs& a) {
  BoundArgs("title", a, {});
  return Value(jinja_title(v.str()));
}

// transformers replaces Jinja's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), with no HTML escaping.
Value filter_tojson(const Value& v, const CallArgs& a) {
  const BoundArgs bound("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions options;
  options.ensure_ascii = bound.truthy_or(0, false);
  if (bound.has(1) && !bound.get(1).is_none()) {
    const Value indent = bound.get(1);
    if (indent.is_string()) {
      options.indent = indent.as_string();
    } else if (indent.is_int() || indent.is_bool()) {
      const auto width = static_cast<std::size_t>(std::max<std::int64_t>(0, indent.as_int()));
      charge_string(width);
      options.indent = std::string(width, ' ');
    } else {
      throw_python_error("TypeError", "can't multiply sequence by non-int of type '", indent.type_name(), "'");
    }
    options.item_separator = ",";
  }
  if (bound.has(2) && !bound.get(2).is_none()) {
    const std::vector<Value> separators = iterate(bound.get(2));
    if (separators.size() != 2) throw_python_error("ValueError", "separators must be an (item, key) pair");
    options.item_separator = separators[0].str();
    options.key_separator = separators[1].str();
  }
  options.sort_keys = bound.truthy_or(3, false);
  return Value(dump_json(v, options));
}

Value filter_trim(const Value& v, const CallArgs& a) {
  const BoundArgs bound("trim", a, {"chars"});
  return Value(py_strip(v.str(), bound.string_or_none(0), StripSide::kBoth));
}

Value filter_truncate(const Value& v, const CallArgs& a) {
  const BoundArgs bound("truncate", a, {"length", "killwords", "end", "leeway"});
  const std::int64_t max_length = bound.int_or(0, 255);
  // Jinja measures len(value) before any conversion: a short list comes back as it is.
  if (!v.is_string() && !v.is_undefined() && length(v) <= max_length + 5) return v;
  const std::u32string text = decode_utf8(v.str());
  const std::u32string end = decode_utf8(bound.get_or(2, Value("...")).str());
  const std::int64_t leeway = bound.has(3) && !bound.get(3).is_none() ? bound.int_or(3, 5) : 5;
  if (max_length < static_cast<std::int64_t>(end.size())) {
    throw_python_error("AssertionError", "expected length >= ", end.size(), ", got ", max_length);
  }
  if (static_cast<std::int64_t>(text.size()) <= max_length + leeway) return Value(encode_utf8(text));
  std::u32string kept = text.substr(0, static_cast<std::size_t>(max_length) - end.size());
  if (!bound.truthy_or(1, false)) {
    const std::size_t space = kept.rfind(U' ');
    if (space != std::u32string::npos) kept.resize(space);
  }
  return Value(encode_utf8(kept + end));
}

Value filter_unique(const Value& v, const CallArgs& a) {
  const BoundArgs bound("unique", a, {"case_sensitive", "attribute"});
  const std::vector<Value> items = iterate(v);
  const std::vector<Value> keys = sort_keys(items, bound, 0, 1);
  std::vector<Value> seen, unique;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(keys[i]); })) {
      seen.push_back(keys[i]);
      unique.push_back(items[i]);
    }
  }
  return Value::list(std::move(unique));
}

Value filter_upper(const Value& v, const CallArgs& a) {
  BoundArgs("upper", a, {});
  return Value(py_upper(v.str()));
}

Value filter_wordcount(const Value& v, const CallArgs& a) {
  BoundArgs("wordcount", a, {});
  return Value(word_count(v.str()));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"batch", filter_batch},
      {"capitalize", filter_capitalize},
      {"center", filter_center},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"forceescape", filter_escape},
      {"format", filter_format},
      {"groupby", filter_groupby},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", [](const Value& v, const CallArgs& a) { return min_max(v, a, true); }},
      {"min", [](const Value& v, const CallArgs& a) { return min_max(v, a, false); }},
      {"pprint", filter_pprint},
      {"reject", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, false); }},
      {"rejectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, false); }},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", [](const Value& v, const CallArgs& a) { return select_items(v, a, false, true); }},
      {"selectattr", [](const Value& v, const CallArgs& a) { return select_items(v, a, true, true); }},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"truncate", filter_truncate},
      {"unique", filter_unique},
      {"upper", filter_upper},
      {"wordcount", filter_wordcount},
  };
  return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto found = filters().find(name);
  return found == filters().end() ? nullptr : found->second;
}

}  // namespace kiln::tokenizer::jinja
