// Expressions: literals, printing (Python's str and repr), operators, comparisons, logic, conditional
// expressions, attribute/item access with Undefined, and slicing. Expectations: Jinja2 3.1.6 configured as
// transformers configures it (each case was rendered by it; the group comments give the deciding rule).

#include "jinja_test_cases.h"

namespace kiln::tokenizer::jinja_testing {
namespace {

const JinjaCase kCases[] = {

    // Printing: {{ }} writes Python's str(): True/None capitalized, floats in repr form, containers in repr form
    // with single-quoted strings; Undefined prints nothing.
    {"PrintScalars", "{{ 1 }}|{{ -3 }}|{{ 2.5 }}|{{ 1.0 }}|{{ true }}|{{ False }}|{{ none }}|{{ None }}|{{ 'txt' }}",
     "", "1|-3|2.5|1.0|True|False|None|None|txt", Expect::kOutput},
    {"PrintUndefinedIsEmpty", "[{{ missing }}]", "", "[]", Expect::kOutput},
    {"PrintFloatRepr",
     "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.5e-7 }} {{ -0.0 }} {{ 1e300 * 1e10 }} {{ "
     "123456789.123456789 }}",
     "", "0.30000000000000004 1e+16 1000000000000000.0 0.0001 1e-05 1.5e-07 -0.0 inf 123456789.12345679",
     Expect::kOutput},
    {"PrintListRepr", "{{ [1, 'a', none, true, 1.5, [2], {'k': (1,)}] }}", "",
     "[1, 'a', None, True, 1.5, [2], {'k': (1,)}]", Expect::kOutput},
    {"PrintStringReprQuoting", R"jinja({{ ["it's", 'a"b', 'x\ny', 'é', '\x00', 'tab\t', 'both\'"'] }})jinja", "",
     R"jinja(["it's", 'a"b', 'x\ny', 'é', '\x00', 'tab\t', 'both\'"'])jinja", Expect::kOutput},
    {"PrintTupleRepr", "{{ (1,) }}{{ (1, 'a') }}{{ () }}", "", "(1,)(1, 'a')()", Expect::kOutput},
    {"PrintDictRepr", "{{ {'a': none, 1: 2.0} }}{{ d }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "{'a': None, 1: 2.0}{'b': 2, 'a': 1}", Expect::kOutput},
    {"PrintJsonContext", "{{ msgs }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "[{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'yo'}]", Expect::kOutput},
    {"PrintNamespaceRepr", "{% set ns = namespace(a=1) %}{{ ns }}", "", "<Namespace {'a': 1}>", Expect::kOutput},
    {"PrintMacroRepr", "{% macro m() %}{% endmacro %}{{ m }}", "", "<Macro 'm'>", Expect::kOutput},

    // Arithmetic follows Python: / is true division, // floors, % takes the divisor's sign, + concatenates strings
    // and lists, * repeats them; mixing types is a TypeError.
    {"IntegerArithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 6 * 7 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", "", "10 -3 42 1024 0.5",
     Expect::kOutput},
    {"Division", "{{ 10 / 4 }} {{ 10 / 5 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 // -2 }} {{ -7.5 // 2 }}", "",
     "2.5 2.0 3 -4 -4 -4.0", Expect::kOutput},
    {"Modulo", "{{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ -7 % 2 }}", "", "2 -2 1.5 1", Expect::kOutput},
    {"MixedNumbers", "{{ 1 + 1.5 }} {{ true + 1 }} {{ 3 * 1.0 }}", "", "2.5 2 3.0", Expect::kOutput},
    {"StringConcatenation", "{{ 'a' + 'b' }}{{ [1] + [2] }}{{ (1,) + (2,) }}", "", "ab[1, 2](1, 2)", Expect::kOutput},
    {"Repetition", "{{ 'x' * 3 }}{{ [0] * 2 }}{{ 3 * 'ab' }}[{{ 'ab' * -1 }}]", "", "xxx[0, 0]ababab[]",
     Expect::kOutput},
    {"TildeConcatenatesStrings", "{{ 'a' ~ 1 ~ 1.0 ~ none ~ true ~ missing ~ [1] }}", "", "a11.0NoneTrue[1]",
     Expect::kOutput},
    {"UnaryMinusBindsBeforeFilter", "{{ -3|abs }} {{ -(3|abs) }} {{ +4 }}", "", "3 -3 4", Expect::kOutput},
    {"Precedence", "{{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 2 * 3 ** 2 }} {{ 1 + 2 ~ 3 }} {{ msgs|length - 1 }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "TypeError: unsupported operand type(s) for +: 'int' and 'str'", Expect::kRuntimeError},
    {"DivisionByZero", "{{ 7 / 0 }}", "", "ZeroDivisionError: division by zero", Expect::kRuntimeError},
    {"FloorDivisionByZero", "{{ 7 // 0 }}", "", "ZeroDivisionError: integer division or modulo by zero",
     Expect::kRuntimeError},
    {"ModuloByZero", "{{ 7 % 0 }}", "", "ZeroDivisionError: integer modulo by zero", Expect::kRuntimeError},
    {"AddStringAndInt", "{{ 'abc' + 1 }}", "", R"jinja(TypeError: can only concatenate str (not "int") to str)jinja",
     Expect::kRuntimeError},
    {"AddIntAndString", "{{ 1 + 'abc' }}", "", "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
     Expect::kRuntimeError},
    {"AddListAndTuple", "{{ [1] + (2,) }}", "",
     R"jinja(TypeError: can only concatenate list (not "tuple") to list)jinja", Expect::kRuntimeError},
    {"AddNone", "{{ none + 1 }}", "", "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'",
     Expect::kRuntimeError},
    {"NegateString", "{{ -'a' }}", "", "TypeError: bad operand type for unary -: 'str'", Expect::kRuntimeError},
    {"PercentFormatting",
     "{{ '%s is %d years and %.2f%%' % ('Bob', 30, 99.5) }}|{{ '%(a)s-%(b)r' % {'a': 1, 'b': 'q'} }}|{{ "
     "'%5s|%-5s|%03d|%x' % ('a', 'b', 7, 255) }}",
     "", "Bob is 30 years and 99.50%|1-'q'|    a|b    |007|ff", Expect::kOutput},

    // Comparisons and logic: == compares across number types, ordering between unrelated types is a TypeError,
    // comparisons chain, and/or return an operand (not a bool), `in` tests substrings, items and keys.
    {"Equality",
     "{{ 1 == 1.0 }} {{ true == 1 }} {{ 0 == false }} {{ none == false }} {{ [1, 2] == [1, 2] }} {{ [1, 2] == (1, 2) "
     "}} {{ {'a': 1} == {'a': 1} }} {{ 'a' != 'b' }}",
     "", "True True True False True False True True", Expect::kOutput},
    {"UndefinedEquality", "{{ x == y }} {{ x == none }} {{ x != 1 }}", "", "True False True", Expect::kOutput},
    {"Ordering", "{{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ (1, 'a') < (1, 'b') }} {{ 2.5 >= 2 }}", "",
     "True True True True True", Expect::kOutput},
    {"ChainedComparison", "{{ 3 > 2 > 1 }} {{ 1 < 2 < 2 }} {{ 1 < 3 > 2 }}", "", "True False True", Expect::kOutput},
    {"OrderingStringAndInt", "{{ 'a' < 1 }}", "", "TypeError: '<' not supported between instances of 'str' and 'int'",
     Expect::kRuntimeError},
    {"OrderingUndefined", "{{ missing < 1 }}", "", "UndefinedError: 'missing' is undefined", Expect::kRuntimeError},
    {"AndOrReturnOperands",
     "{{ 1 and 0 }} {{ 0 or 'x' }} {{ '' or none }} {{ 'a' and 'b' }} {{ [] or [1] }} {{ missing or 'fallback' }}", "",
     "0 x None b [1] fallback", Expect::kOutput},
    {"Not", "{{ not true }} {{ not none }} {{ not '' }} {{ not [0] }} {{ not missing }} {{ not 0.0 }}", "",
     "False True True False True True", Expect::kOutput},
    {"NotBindsLooserThanIs", "{{ not x is defined }} {{ not (x is defined) }}", "", "True True", Expect::kOutput},
    {"Membership",
     "{{ 'ab' in 'cabd' }} {{ 1 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 'a' not in [] }} {{ 'a' in missing }} {{ 2 in "
     "(1, 2) }}",
     "", "True True True True False True", Expect::kOutput},
    {"MembershipIntInString", "{{ 1 in 'abc' }}", "",
     "TypeError: 'in <string>' requires string as left operand, not int", Expect::kRuntimeError},
    {"MembershipInNone", "{{ 'a' in none }}", "", "TypeError: argument of type 'NoneType' is not iterable",
     Expect::kRuntimeError},
    {"MembershipUnhashableKey", "{{ [1] in {'a': 1} }}", "", "TypeError: unhashable type: 'list'",
     Expect::kRuntimeError},
    {"TruthinessOfValues",
     "{% for v in [0, 1, '', 'a', [], [0], {}, {'a': 1}, none, 0.0] %}{{ 'T' if v else 'F' }}{% endfor %}", "",
     "FTFTFTFTFF", Expect::kOutput},

    // Conditional expressions: `a if c else b`; without else a false condition gives Undefined.
    {"ConditionalExpression", "{{ 'a' if true }}|{{ 'b' if false else 'c' }}|{{ 'd' if none else 'e' if 1 else 'f' }}",
     "", "a|c|e", Expect::kOutput},
    {"ConditionalWithoutElseIsUndefined", "[{{ 'x' if false }}] {{ ('x' if false) is defined }}", "", "[] False",
     Expect::kOutput},

    // Attribute and item access: obj.name tries the attribute (a method) before the key, obj[key] the key before
    // the attribute; a miss is Undefined, which fails as soon as it is used for anything but printing and tests.
    {"AttributeAndItem", "{{ msgs[0]['role'] }} {{ msgs[0].role }} {{ msgs[-1].content }} {{ msgs.1.content }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "user user yo yo", Expect::kOutput},
    {"MissingKeyIsUndefined",
     "[{{ msgs[0].missing }}] {{ msgs[0].missing is defined }} {{ msgs[5] is defined }} {{ d['zz'] is defined }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "[] False False False", Expect::kOutput},
    {"AttributeOfUndefinedFails", "{{ missing.attr }}", "", "UndefinedError: 'missing' is undefined",
     Expect::kRuntimeError},
    {"AttributeOfMissingKeyFails", "{{ {'a': 1}.b.c }}", "", "UndefinedError: 'dict object' has no attribute 'b'",
     Expect::kRuntimeError},
    {"ItemOfUndefinedFails", "{{ missing['key'] }}", "", "UndefinedError: 'missing' is undefined",
     Expect::kRuntimeError},
    {"AttributeOfNoneFails", "{{ n.content.x }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "UndefinedError: 'None' has no attribute 'content'", Expect::kRuntimeError},
    {"AttributeOfNoneIsUndefined", "{{ n.content is defined }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "False", Expect::kOutput},
    {"DictMethodWinsOverKey", "{{ {'items': 1}['items'] }} {{ ({'items': 1}.items)()|list }}", "", "1 [('items', 1)]",
     Expect::kOutput},
    {"StringIndexing", "{{ 'héllo'[1] }} {{ 'hello'[-1] }} [{{ 'hello'[10] }}]", "", "é o []", Expect::kOutput},
    {"UndefinedPlusStringFails", "{{ missing + 'a' }}", "", "UndefinedError: 'missing' is undefined",
     Expect::kRuntimeError},
    {"CallingUndefinedFails", "{{ missing() }}", "", "UndefinedError: 'missing' is undefined", Expect::kRuntimeError},
    {"CallingStringFails", "{{ 'abc'() }}", "", "TypeError: 'str' object is not callable", Expect::kRuntimeError},
    {"PrivateAttributeIsUnsafe", "[{{ 'ab'.__class__ }}]", "", "[]", Expect::kOutput},

    // Slices use Python's semantics on strings (by code point), lists and tuples.
    {"Slices",
     "{{ 'hello'[1:3] }} {{ 'hello'[::2] }} {{ 'hello'[-3:] }} [{{ 'hello'[10:] }}] {{ [1, 2, 3, 4][::-2] }} {{ [1, 2, "
     "3][1:1] }} {{ 'héllo'[::-1] }} {{ [1, 2, 3][-10:2] }} {{ (1, 2, 3)[1:] }}",
     "", "el hlo llo [] [4, 2] [] olléh [1, 2] (2, 3)", Expect::kOutput},
    {"ReverseMessages", "{% for m in msgs[::-1] %}{{ m.role }} {% endfor %}{{ msgs[1:]|length }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "assistant user 1", Expect::kOutput},
    {"SliceOfNoneFails", "{{ n[1:] }}",
     R"jinja({"n": null, "i": 7, "f": 2.5, "s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "e": "", "z": [], "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "TypeError: 'NoneType' object is not subscriptable", Expect::kRuntimeError},
    {"SliceStepZeroFails", "{{ 'abc'[::0] }}", "", "ValueError: slice step cannot be zero", Expect::kRuntimeError},
};

class ExpressionsTest : public ::testing::TestWithParam<JinjaCase> {};

TEST_P(ExpressionsTest, MatchesJinja2) { check_case(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Jinja, ExpressionsTest, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace kiln::tokenizer::jinja_testing
