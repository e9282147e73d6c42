#include "tokenizer/jinja_operators.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_strings.h"
#include "tokenizer/jinja_unicode.h"

namespace kiln::tokenizer::jinja {

namespace {

const char* symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "** or pow()";
  }
  return "?";
}

const char* symbol(CompareOp op) {
  switch (op) {
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
    default: return "==";
  }
}

[[noreturn]] void unsupported(BinaryOp op, const Value& left, const Value& right) {
  throw_python_error("TypeError", "unsupported operand type(s) for ", symbol(op), ": '", left.type_name(), "' and '",
                     right.type_name(), "'");
}

Value repeat(const Value& sequence, std::int64_t times) {
  const auto count = static_cast<std::size_t>(std::max<std::int64_t>(0, times));
  if (sequence.is_string()) {
    charge_string(saturating_product(sequence.as_string().size(), count));
    std::string out;
    for (std::int64_t i = 0; i < times; ++i) out += sequence.as_string();
    return Value(std::move(out));
  }
  charge_items(saturating_product(sequence.as_list().items.size(), count));
  std::vector<Value> items;
  for (std::int64_t i = 0; i < times; ++i) {
    items.insert(items.end(), sequence.as_list().items.begin(), sequence.as_list().items.end());
  }
  return sequence.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

bool is_integral(const Value& value) { return value.is_int() || value.is_bool(); }

Value arithmetic(BinaryOp op, const Value& left, const Value& right) {
  const bool integers = is_integral(left) && is_integral(right);
  const double a = left.as_double();
  const double b = right.as_double();
  switch (op) {
    case BinaryOp::kAdd: return integers ? Value(left.as_int() + right.as_int()) : Value(a + b);
    case BinaryOp::kSub: return integers ? Value(left.as_int() - right.as_int()) : Value(a - b);
    case BinaryOp::kMul: return integers ? Value(left.as_int() * right.as_int()) : Value(a * b);
    case BinaryOp::kDiv:
      if (b == 0) throw_python_error("ZeroDivisionError", integers ? "division by zero" : "float division by zero");
      return Value(a / b);
    case BinaryOp::kFloorDiv:
      if (integers) {
        const std::int64_t x = left.as_int(), y = right.as_int();
        if (y == 0) throw_python_error("ZeroDivisionError", "integer division or modulo by zero");
        std::int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value(q);
      }
      if (b == 0) throw_python_error("ZeroDivisionError", "float floor division by zero");
      return Value(std::floor(a / b));
    case BinaryOp::kMod:
      if (integers) {
        const std::int64_t x = left.as_int(), y = right.as_int();
        if (y == 0) throw_python_error("ZeroDivisionError", "integer modulo by zero");
        std::int64_t r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return Value(r);
      } else {
        if (b == 0) throw_python_error("ZeroDivisionError", "float modulo");
        double r = std::fmod(a, b);
        if (r != 0 && ((r < 0) != (b < 0))) r += b;
        // A zero remainder takes the divisor's sign (0.0 % -2 is -0.0).
        return Value(r == 0 ? std::copysign(0.0, b) : r);
      }
    case BinaryOp::kPow:
      if (integers && right.as_int() >= 0) {
        std::int64_t result = 1;
        for (std::int64_t i = 0; i < right.as_int(); ++i) result *= left.as_int();
        return Value(result);
      }
      return Value(std::pow(a, b));
  }
  unsupported(op, left, right);
}

bool sequence_less(const List& a, const List& b) {
  const std::size_t n = std::min(a.items.size(), b.items.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (!a.items[i].equals(b.items[i])) return less_than(a.items[i], b.items[i]);
  }
  return a.items.size() < b.items.size();
}

// Python's rich comparison for the ordering operators; TypeError between unorderable kinds.
bool ordered(CompareOp op, const Value& left, const Value& right) {
  if (left.is_undefined()) left.as_undefined().fail();
  if (right.is_undefined()) right.as_undefined().fail();
  int order = 0;  // <0, 0, >0 as left is less, equal, greater
  if (left.is_number() && right.is_number()) {
    if (is_integral(left) && is_integral(right)) {
      order = left.as_int() < right.as_int() ? -1 : left.as_int() > right.as_int() ? 1 : 0;
    } else {
      const double a = left.as_double(), b = right.as_double();
      if (std::isnan(a) || std::isnan(b)) return false;
      order = a < b ? -1 : a > b ? 1 : 0;
    }
  } else if (left.is_string() && right.is_string()) {
    // Byte order of UTF-8 is code point order.
    order = left.as_string().compare(right.as_string());
  } else if (left.is_list() && right.is_list() && left.is_tuple() == right.is_tuple()) {
    order = sequence_less(left.as_list(), right.as_list())   ? -1
            : sequence_less(right.as_list(), left.as_list()) ? 1
                                                             : 0;
  } else {
    throw_python_error("TypeError", "'", symbol(op), "' not supported between instances of '", left.type_name(),
                       "' and '", right.type_name(), "'");
  }
  switch (op) {
    case CompareOp::kLt: return order < 0;
    case CompareOp::kLe: return order <= 0;
    case CompareOp::kGt: return order > 0;
    case CompareOp::kGe: return order >= 0;
    default: return false;
  }
}

}  // namespace

Value apply_binary(BinaryOp op, const Value& left, const Value& right) {
  if (left.is_undefined()) left.as_undefined().fail();
  if (right.is_undefined()) right.as_undefined().fail();
  if (left.is_number() && right.is_number()) return arithmetic(op, left, right);
  switch (op) {
    case BinaryOp::kAdd:
      if (left.is_string()) {
        if (!right.is_string()) {
          throw_python_error("TypeError", "can only concatenate str (not \"", right.type_name(), "\") to str");
        }
        return Value(left.as_string() + right.as_string());
      }
      if (left.is_list()) {
        if (!right.is_list() || right.is_tuple() != left.is_tuple()) {
          throw_python_error("TypeError", "can only concatenate ", left.type_name(), " (not \"", right.type_name(),
                             "\") to ", left.type_name());
        }
        std::vector<Value> items = left.as_list().items;
        items.insert(items.end(), right.as_list().items.begin(), right.as_list().items.end());
        return left.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      break;
    case BinaryOp::kMul:
      if ((left.is_string() || left.is_list()) && is_integral(right)) return repeat(left, right.as_int());
      if (is_integral(left) && (right.is_string() || right.is_list())) return repeat(right, left.as_int());
      if (left.is_string() || left.is_list()) {
        throw_python_error("TypeError", "can't multiply sequence by non-int of type '", right.type_name(), "'");
      }
      if (right.is_string() || right.is_list()) {
        throw_python_error("TypeError", "can't multiply sequence by non-int of type '", left.type_name(), "'");
      }
      break;
    case BinaryOp::kMod:
      if (left.is_string()) return Value(percent_format(left.as_string(), right));
      break;
    default: break;
  }
  unsupported(op, left, right);
}

Value negate(const Value& operand) {
  if (operand.is_undefined()) operand.as_undefined().fail();
  if (operand.is_float()) return Value(-operand.as_double());
  if (operand.is_int() || operand.is_bool()) return Value(-operand.as_int());
  throw_python_error("TypeError", "bad operand type for unary -: '", operand.type_name(), "'");
}

Value unary_plus(const Value& operand) {
  if (operand.is_undefined()) operand.as_undefined().fail();
  if (operand.is_float()) return operand;
  if (operand.is_int() || operand.is_bool()) return Value(operand.as_int());
  throw_python_error("TypeError", "bad operand type for unary +: '", operand.type_name(), "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string()) {
        throw_python_error("TypeError", "'in <string>' requires string as left operand, not ", item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& element : container.as_list().items) {
        if (element.equals(item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (item.is_dict() || (item.is_list() && !item.is_tuple())) {
        throw_python_error("TypeError", "unhashable type: '", item.type_name(), "'");
      }
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::kUndefined: return false;  // Undefined iterates as empty
    default: throw_python_error("TypeError", "argument of type '", container.type_name(), "' is not iterable");
  }
}

bool compare(CompareOp op, const Value& left, const Value& right) {
  switch (op) {
    case CompareOp::kEq: return left.equals(right);
    case CompareOp::kNe: return !left.equals(right);
    case CompareOp::kIn: return contains(right, left);
    case CompareOp::kNotIn: return !contains(right, left);
    default: return ordered(op, left, right);
  }
}

bool less_than(const Value& left, const Value& right) { return ordered(CompareOp::kLt, left, right); }

bool greater_than(const Value& left, const Value& right) { return ordered(CompareOp::kGt, left, right); }

std::string percent_format(const std::string& format, const Value& args) {
  const bool mapping = args.is_dict();
  // Python treats any non-tuple argument with __getitem__ as a possible mapping: unused, it is no error.
  const bool may_go_unused = mapping || (args.is_list() && !args.is_tuple());
  std::vector<Value> values;
  if (args.is_tuple()) {
    values = args.as_list().items;
  } else if (!mapping) {
    values.push_back(args);
  }
  std::size_t next = 0;
  std::string out;
  auto digits = [&format](std::size_t& i) {
    // Saturates: a width past the bound on one string fails when the padding is made.
    int number = 0;
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
      number = number > 100'000'000 ? 1'000'000'000 : number * 10 + (format[i] - '0');
      ++i;
    }
    return number;
  };
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw_python_error("ValueError", "incomplete format");
    const Value* value = nullptr;
    if (format[i] == '(') {
      const std::size_t close = format.find(')', i);
      if (close == std::string::npos || !mapping) throw_python_error("TypeError", "format requires a mapping");
      const std::string key = format.substr(i + 1, close - i - 1);
      value = args.as_dict().find(std::string_view(key));
      if (value == nullptr) throw_python_error("KeyError", "'", key, "'");
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string_view("-+ #0").find(format[i]) != std::string_view::npos) {
      flags += format[i++];
    }
    const int width = digits(i);
    int precision = -1;
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = digits(i);
    }
    if (i >= format.size()) throw_python_error("ValueError", "incomplete format");
    const char conversion = format[i];
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (value == nullptr) {
      if (mapping) {
        value = &args;
      } else {
        if (next >= values.size()) throw_python_error("TypeError", "not enough arguments for format string");
        value = &values[next++];
      }
    }
    // The C formatter pads numbers as wide as asked (the buffer keeps 511 characters of them).
    check_string_size(out.size() + static_cast<std::size_t>(std::max(width, precision)));
    std::string spec = "%" + flags + (width > 0 ? std::to_string(width) : "");
    if (precision >= 0) spec += "." + std::to_string(precision);
    char buffer[512];
    switch (conversion) {
      case 's':
      case 'r':
      case 'a': {
        std::u32string text = decode_utf8(conversion == 's' ? value->str() : value->repr());
        if (precision >= 0 && text.size() > static_cast<std::size_t>(precision)) text.resize(precision);
        const std::size_t padding = text.size() < static_cast<std::size_t>(width) ? width - text.size() : 0;
        check_string_size(out.size() + padding);
        const bool left_align = flags.find('-') != std::string::npos;
        if (!left_align) out.append(padding, ' ');
        out += encode_utf8(text);
        if (left_align) out.append(padding, ' ');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (!value->is_number()) {
          throw_python_error("TypeError", "%", conversion, " format: a real number is required, not ",
                             value->type_name());
        }
        const char c_conversion = (conversion == 'i' || conversion == 'u') ? 'd' : conversion;
        const auto integer =
            static_cast<long long>(value->is_float() ? std::trunc(value->as_double()) : value->as_int());
        std::snprintf(buffer, sizeof(buffer), (spec + "ll" + c_conversion).c_str(), integer);
        out += buffer;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!value->is_number()) throw_python_error("TypeError", "must be real number, not ", value->type_name());
        std::snprintf(buffer, sizeof(buffer), (spec + conversion).c_str(), value->as_double());
        out += buffer;
        break;
      case 'c':
        if (value->is_string()) {
          out += value->as_string();
        } else {
          append_utf8(out, static_cast<char32_t>(value->as_int()));
        }
        break;
      default: throw_python_error("ValueError", "unsupported format character '", conversion, "'");
    }
  }
  if (!may_go_unused && next < values.size()) {
    throw_python_error("TypeError", "not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace kiln::tokenizer::jinja
