#include "tokenizer/jinja_tests.h"

#include <unordered_map>

#include "tokenizer/jinja_access.h"
#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_filters.h"
#include "tokenizer/jinja_operators.h"
#include "tokenizer/jinja_strings.h"

namespace kiln::tokenizer::jinja {

namespace {

void expect_no_args(const char* name, const CallArgs& args) { BoundArgs(name, args, {}); }

// The single argument of a comparison test (`x is eq 3`, `x is gt(2)`).
Value operand(const char* name, const CallArgs& args) { return BoundArgs(name, args, {"other"}, 1).get(0); }

bool is_integral(const Value& v) { return v.is_int() || v.is_bool(); }

template <CompareOp Op>
bool comparison(const Value& value, const CallArgs& args) {
  return compare(Op, value, operand("compare", args));
}

const std::unordered_map<std::string_view, TestFn>& tests() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("defined", a);
         return !v.is_undefined();
       }},
      {"undefined",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("undefined", a);
         return v.is_undefined();
       }},
      {"none",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("none", a);
         return v.is_none();
       }},
      {"boolean",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("boolean", a);
         return v.is_bool();
       }},
      {"true",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("true", a);
         return v.is_bool() && v.as_bool();
       }},
      {"false",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("false", a);
         return v.is_bool() && !v.as_bool();
       }},
      {"integer",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("integer", a);
         return v.is_int();
       }},
      {"float",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("float", a);
         return v.is_float();
       }},
      {"number",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("number", a);
         return v.is_number();
       }},
      {"string",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("string", a);
         return v.is_string();
       }},
      {"mapping",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("mapping", a);
         return v.is_dict();
       }},
      // Python: anything with len() and __getitem__ (Jinja's Undefined has both).
      {"sequence",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("sequence", a);
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"iterable",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("iterable", a);
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      // Python's callable(): Undefined defines __call__ (to fail), so it counts.
      {"callable",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("callable", a);
         return v.is_callable() || v.is_undefined();
       }},
      {"odd",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("odd", a);
         return apply_binary(BinaryOp::kMod, v, Value(2)).equals(Value(1));
       }},
      {"even",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("even", a);
         return apply_binary(BinaryOp::kMod, v, Value(2)).equals(Value(0));
       }},
      {"divisibleby",
       [](const Value& v, const CallArgs& a) {
         const BoundArgs bound("divisibleby", a, {"num"}, 1);
         return apply_binary(BinaryOp::kMod, v, bound.get(0)).equals(Value(0));
       }},
      {"lower",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("lower", a);
         return py_is(v.str(), CharClass::kLower);
       }},
      {"upper",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("upper", a);
         return py_is(v.str(), CharClass::kUpper);
       }},
      // Python's `is`: identity, which for None, booleans, small ints and equal strings behaves as equality.
      {"sameas",
       [](const Value& v, const CallArgs& a) {
         const Value other = operand("sameas", a);
         if (v.kind() != other.kind()) return false;
         if (v.is_none() || v.is_bool() || is_integral(v) || v.is_string() || v.is_undefined()) return v.equals(other);
         return v.is_same_object(other);
       }},
      {"escaped",
       [](const Value&, const CallArgs& a) {
         expect_no_args("escaped", a);
         return false;
       }},
      {"in", [](const Value& v, const CallArgs& a) { return contains(BoundArgs("in", a, {"seq"}, 1).get(0), v); }},
      {"filter",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("filter", a);
         return v.is_string() && find_filter(v.as_string()) != nullptr;
       }},
      {"test",
       [](const Value& v, const CallArgs& a) {
         expect_no_args("test", a);
         return v.is_string() && find_test(v.as_string()) != nullptr;
       }},
      {"eq", comparison<CompareOp::kEq>},
      {"equalto", comparison<CompareOp::kEq>},
      {"==", comparison<CompareOp::kEq>},
      {"ne", comparison<CompareOp::kNe>},
      {"!=", comparison<CompareOp::kNe>},
      {"lt", comparison<CompareOp::kLt>},
      {"lessthan", comparison<CompareOp::kLt>},
      {"<", comparison<CompareOp::kLt>},
      {"le", comparison<CompareOp::kLe>},
      {"<=", comparison<CompareOp::kLe>},
      {"gt", comparison<CompareOp::kGt>},
      {"greaterthan", comparison<CompareOp::kGt>},
      {">", comparison<CompareOp::kGt>},
      {"ge", comparison<CompareOp::kGe>},
      {">=", comparison<CompareOp::kGe>},
  };
  return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
  const auto found = tests().find(name);
  return found == tests().end() ? nullptr : found->second;
}

}  // namespace kiln::tokenizer::jinja
