// Statements: if/elif/else, for (loop variable, else, filters, unpacking, break/continue, recursion), set and
// scoping, namespace(), with, macros and call blocks, filter blocks, and the global functions. Expectations:
// Jinja2 3.1.6 configured as transformers configures it (each case was rendered by it; the group comments give
// the deciding rule).

#include "jinja_test_cases.h"

namespace kiln::tokenizer::jinja_testing {
namespace {

const JinjaCase kCases[] = {

    // {% if %}/{% elif %}/{% else %}: the first truthy branch renders; Undefined is falsy.
    {"IfElifElse",
     "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}", "",
     "one two many ", Expect::kOutput},
    {"IfUndefinedIsFalse", "{% if x %}a{% elif x is defined %}b{% else %}c{% endif %}", "", "c", Expect::kOutput},
    {"IfTestOnTuple", "{% if 1, 2 %}tuple{% endif %}", "", "tuple", Expect::kOutput},

    // {% for %}: the loop variable (index, index0, revindex, revindex0, first, last, length, previtem, nextitem,
    // cycle, changed, depth), else blocks, filtered loops (`if` filters before counting), tuple unpacking, loops
    // over dicts (keys) and strings (characters), break and continue (transformers enables loopcontrols).
    {"LoopVariable",
     "{% for i in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ "
     "loop.last }}{{ loop.length }}|{% endfor %}",
     R"jinja({"items": [1, 2, 3], "msgs": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|", Expect::kOutput},
    {"LoopNeighbours",
     "{% for a in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('x', 'y') }}-{{ loop.depth }},{% "
     "endfor %}",
     "", "-2-x-1,1-3-y-1,2--x-1,", Expect::kOutput},
    {"LoopChanged", "{% for x in [1, 2, 3] %}{{ loop.changed(x > 1) }}{% endfor %}", "", "TrueTrueFalse",
     Expect::kOutput},
    {"ForElse", "{% for i in [] %}x{% else %}empty{% endfor %}", "", "empty", Expect::kOutput},
    {"FilteredLoopCountsKeptItems",
     "{% for i in range(10) if i is odd %}{{ loop.index }}/{{ loop.length }}:{{ i }},{% endfor %}", "",
     "1/5:1,2/5:3,3/5:5,4/5:7,5/5:9,", Expect::kOutput},
    {"FilteredLoopElse", "{% for i in [0, none] if i %}x{% else %}none kept{% endfor %}", "", "none kept",
     Expect::kOutput},
    {"TupleUnpacking",
     "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for a, (b, c) in [(1, (2, 3))] %}{{ a "
     "}}{{ b }}{{ c }}{% endfor %}",
     "", "a=1;b=2;123", Expect::kOutput},
    {"LoopOverDictAndString",
     "{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}{% for ch in 'héy' %}[{{ ch }}]{% endfor %}", "", "xy[h][é][y]",
     Expect::kOutput},
    {"LoopOverUndefinedIsEmpty", "{% for i in missing %}x{% else %}nothing{% endfor %}", "", "nothing",
     Expect::kOutput},
    {"LoopOverNoneFails", "{% for i in none %}{% endfor %}", "", "TypeError: 'NoneType' object is not iterable",
     Expect::kRuntimeError},
    {"LoopOverIntFails", "{% for i in 3 %}{% endfor %}", "", "TypeError: 'int' object is not iterable",
     Expect::kRuntimeError},
    {"UnpackTooFew", "{% for a, b in [[1, 2], [3]] %}{{ a }}{{ b }}{% endfor %}", "",
     "ValueError: not enough values to unpack (expected 2, got 1)", Expect::kRuntimeError},
    {"BreakAndContinue",
     "{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i "
     "}}{% endfor %}",
     "", "13", Expect::kOutput},
    {"BreakSkipsElse",
     "{% for i in range(3) %}{% if loop.last %}{% break %}{% endif %}{{ i }}{% else %}none{% endfor %}", "", "01",
     Expect::kOutput},
    {"NestedLoopsHaveOwnLoop",
     "{% for i in [1, 2] %}{% for j in 'ab' %}{{ loop.index }}{{ j }}{% endfor %}{{ loop.index }};{% endfor %}", "",
     "1a2b1;1a2b2;", Expect::kOutput},
    {"RecursiveLoop",
     "{% for node in [{'n': 'a', 'c': [{'n': 'b', 'c': []}]}] recursive %}{{ node.n }}{{ loop.depth }}({{ loop(node.c) "
     "}}){% endfor %}",
     "", "a1(b2())", Expect::kOutput},
    {"CallingNonRecursiveLoopFails", "{% for x in [1] %}{{ loop([2]) }}{% endfor %}", "",
     "TypeError: The loop must have the 'recursive' marker to be called recursively.", Expect::kRuntimeError},
    {"LoopOutsideLoopIsUndefined", "[{{ loop }}]", "", "[]", Expect::kOutput},
    {"ReverseIndexPattern",
     "{% for m in msgs[::-1] %}{% set index = (msgs|length - 1) - loop.index0 %}{{ index }}{{ m.role[0] }}{% endfor %}",
     R"jinja({"items": [1, 2, 3], "msgs": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "2a1u0s", Expect::kOutput},

    // Scoping: a {% set %} inside a loop body lasts for that iteration only (each iteration starts from the outer
    // value), {% if %} opens no scope, namespace() objects carry state out of loops, {% with %} and block sets have
    // their own scope.
    {"SetInLoopDoesNotLeak", "{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}",
     "", "0102|0", Expect::kOutput},
    {"SetInLoopIsPerIteration", "{% for i in [1, 2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}",
     "", "[]", Expect::kOutput},
    {"SetInIfIsVisible", "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "", "2", Expect::kOutput},
    {"NamespaceCarriesState",
     "{% set ns = namespace(a=1, found=false) %}{% for i in [1, 2] %}{% set ns.a = ns.a + i %}{% if i == 2 %}{% set "
     "ns.found = true %}{% endif %}{% endfor %}{{ ns.a }} {{ ns.found }} {{ ns.missing is defined }} {{ ns['a'] }}",
     "", "4 True False 4", Expect::kOutput},
    {"NamespaceFromDict", "{% set ns = namespace({'x': 1}, y=2) %}{{ ns.x }}{{ ns.y }}", "", "12", Expect::kOutput},
    {"NamespaceAssignOnNonNamespaceFails", "{% set x = 1 %}{% set x.y = 2 %}", "",
     "TemplateRuntimeError: cannot assign attribute on non-namespace object", Expect::kRuntimeError},
    {"TupleAssignment",
     "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set p, q = 'xy' %}{{ q }}{{ p }}", "",
     "12(1, 2)yx", Expect::kOutput},
    {"TupleAssignmentTooMany", "{% set a, b = [1, 2, 3] %}", "", "ValueError: too many values to unpack (expected 2)",
     Expect::kRuntimeError},
    {"BlockSet", "{% set x %}a{% set y = 1 %}b{{ 1 + 1 }}{% endset %}{{ x }}[{{ y }}]", "", "ab2[]", Expect::kOutput},
    {"BlockSetWithFilter", "{% set t | upper | trim %}  abc  {% endset %}[{{ t }}]", "", "[ABC]", Expect::kOutput},
    {"With", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", "", "3[]", Expect::kOutput},
    {"WithSetStaysInside", "{% set x = 1 %}{% with %}{% set x = 2 %}{{ x }}{% endwith %}{{ x }}", "", "21",
     Expect::kOutput},
    {"TopLevelSetShadowsContext", "{% set messages = msgs[1:] %}{{ messages|length }}",
     R"jinja({"items": [1, 2, 3], "msgs": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})jinja",
     "2", Expect::kOutput},
    {"ContextShadowsGlobals", "{{ range }}", R"jinja({"range": "shadowed"})jinja", "shadowed", Expect::kOutput},

    // Macros: positional and keyword arguments, defaults evaluated at call time, varargs/kwargs when the body uses
    // them, missing arguments are Undefined, recursion, caller() from {% call %}; a macro sees the variables of the
    // scope it was defined in as they are when it is called.
    {"MacroArguments",
     "{% set x = 5 %}{% macro m(a, b=a) %}{{ a }}{{ b }}{{ x }}{% endmacro %}{{ m(1) }}|{{ m(1, 3) }}|{{ m(b=4, a=2) "
     "}}",
     "", "115|135|245", Expect::kOutput},
    {"MacroVarargsKwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}", "",
     "1(2,){'k': 3}", Expect::kOutput},
    {"MacroTooManyArguments", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", "",
     "TypeError: macro 'm' takes not more than 1 argument(s)", Expect::kRuntimeError},
    {"MacroUnknownKeyword", "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(k=1) }}", "",
     "TypeError: macro 'm' takes no keyword argument 'k'", Expect::kRuntimeError},
    {"MacroKeywordForPositionalParameter", "{% macro m(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ m(1, a=2) }}", "",
     "TypeError: macro 'm' takes no keyword argument 'a'", Expect::kRuntimeError},
    {"MacroMissingArgumentIsUndefined", "{% macro m(a) %}[{{ a }}]{{ a is defined }}{% endmacro %}{{ m() }}", "",
     "[]False", Expect::kOutput},
    {"MacroSeesLaterValues", "{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}{% set x = 2 %}{{ m() }}", "",
     "12", Expect::kOutput},
    {"MacroRecursion", "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", "",
     "321", Expect::kOutput},
    {"MacroResultIsString", "{% macro m() %} 1 {% endmacro %}[{{ m()|trim }}] {{ m() is string }}", "", "[1] True",
     Expect::kOutput},
    {"CallBlock",
     "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}",
     "", "<b>bold</b>", Expect::kOutput},
    {"CallBlockWithArguments",
     "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ "
     "item }}]{% endcall %}",
     "", "[1][2]", Expect::kOutput},
    {"MacroOwnScope", "{% macro m() %}{% set inner = 1 %}{{ inner }}{% endmacro %}{{ m() }}[{{ inner }}]", "", "1[]",
     Expect::kOutput},

    // Other tags: {% filter %}, {% print %}, transformers' {% generation %} (rendered as is), {% raw %}.
    {"FilterBlock", "{% filter trim %}   x   {% endfilter %}|{% filter replace('a', 'b')|upper %}aaa{% endfilter %}",
     "", "x|BBB", Expect::kOutput},
    {"Print", "{% print 'a', 1 %}", "", "a1", Expect::kOutput},
    {"Generation", "{% generation %}gen {{ 1 }}{% endgeneration %}", "", "gen 1", Expect::kOutput},
    {"Raw", "{% raw %}{{ not evaluated }}{% endraw %}", "", "{{ not evaluated }}", Expect::kOutput},

    // Globals: range (capped by the sandbox), dict, namespace, cycler, joiner, raise_exception (its message is the
    // whole error), strftime_now.
    {"Range", "{{ range(5)|list }}{{ range(2, 10, 3)|list }}{{ range(10, 0, -3)|list }}{{ range(0)|list }}", "",
     "[0, 1, 2, 3, 4][2, 5, 8][10, 7, 4, 1][]", Expect::kOutput},
    {"RangeTooBig", "{{ range(1000000)|length }}", "",
     "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).", Expect::kRuntimeError},
    {"Dict", "{{ dict(a=1) }}{{ dict([('a', 1)]) }}{{ dict({'x': 1}, y=2) }}", "", "{'a': 1}{'a': 1}{'x': 1, 'y': 2}",
     Expect::kOutput},
    {"CyclerAndJoiner",
     "{% set c = cycler('odd', 'even') %}{% set j = joiner(' | ') %}{% for i in range(3) %}{{ j() }}{{ c.next() }}{% "
     "endfor %} {{ c.current }}",
     "", "odd | even | odd even", Expect::kOutput},
    {"RaiseException",
     "{% if true %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% "
     "endif %}",
     "", "Conversation roles must alternate user/assistant/user/assistant/...", Expect::kRaised},
    {"RaiseExceptionNonString", "{{ raise_exception(42) }}", "", "42", Expect::kRaised},
    {"StrftimeNowIsDefined", "{{ strftime_now is defined }} {{ strftime_now('%Y')|length }}", "", "True 4",
     Expect::kOutput},
};

class StatementsTest : public ::testing::TestWithParam<JinjaCase> {};

TEST_P(StatementsTest, MatchesJinja2) { check_case(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Jinja, StatementsTest, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace kiln::tokenizer::jinja_testing
