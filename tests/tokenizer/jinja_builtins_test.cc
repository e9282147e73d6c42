// Built-in filters, tests and Python methods, including their errors. Expectations: Jinja2 3.1.6 configured as
// transformers configures it (each case was rendered by it; the group comments give the deciding rule).

#include "jinja_test_cases.h"

namespace kiln::tokenizer::jinja_testing {
namespace {

const JinjaCase
    kCases[] =
        {

            // String filters: trim strips Unicode whitespace (or given characters), upper/lower/capitalize follow
            // Python's
            // full case mappings, Jinja's title capitalizes words split at whitespace, '-' and brackets,
            // replace/indent/
            // center/truncate/wordcount/escape as in Jinja2.
            {"Trim",
             R"jinja([{{ '  x  '|trim }}][{{ 'xxaxx'|trim('x') }}][{{ '\u3000 x\xa0'|trim }}][{{ missing|trim }}])jinja",
             "", "[x][a][x][]", Expect::kOutput},
            {"CaseFilters",
             R"jinja({{ 'HeLLo'|lower }} {{ 'hello'|upper }} {{ 'hello world'|capitalize }} {{ "o'neil hello-world (x)"|title }})jinja",
             "", "hello HELLO Hello world O'neil Hello-World (X)", Expect::kOutput},
            {"CaseSpecialMappings", "{{ 'ß'|upper }} {{ 'straße'|title }} {{ 'ﬁx'|upper }} {{ 'İ'|lower|length }}", "",
             "SS Straße FIX 2", Expect::kOutput},
            {"Replace", "{{ 'aXbX'|replace('X', '-') }} {{ 'aXbX'|replace('X', '-', 1) }} {{ 'ab'|replace('', '.') }}",
             "", "a-b- a-bX .a.b.", Expect::kOutput},
            {"Indent",
             R"jinja({{ 'a\n\nb\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent(width='> ') }}|{{ 'x'|indent }})jinja",
             "", "a\n\n  b\n  c|  a\n  b|a\n  \n  b|a\n> b|x", Expect::kOutput},
            {"IndentOfListFails", "{{ [1]|indent }}", "", "AttributeError: 'list' object has no attribute 'splitlines'",
             Expect::kRuntimeError},
            {"Center", "[{{ 'hello'|center(11) }}][{{ 'hi'|center(5) }}][{{ 'hi'|center(6) }}]", "",
             "[   hello   ][  hi ][  hi  ]", Expect::kOutput},
            {"Truncate",
             "{{ 'one two three four'|truncate(9) }}|{{ 'one two three four'|truncate(9, true) }}|{{ 'one two three "
             "four five six'|truncate(15, false, '..', 0) }}|{{ 'short'|truncate(3) }}",
             "", "one...|one tw...|one two..|short", Expect::kOutput},
            {"Wordcount",
             R"jinja({{ 'a b\tc\n d'|wordcount }} {{ 'foo_bar-baz qux'|wordcount }} {{ ''|wordcount }})jinja", "",
             "4 3 0", Expect::kOutput},
            {"Escape", R"jinja({{ '<a href="x">&\'</a>'|e }} {{ 'x'|escape }} {{ '<b>'|safe }})jinja", "",
             "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; x <b>", Expect::kOutput},
            {"Format", "{{ '%s-%05.1f-%d%%'|format('x', 3.14159, 7) }} {{ '%(a)s'|format(a='k') }}", "", "x-003.1-7% k",
             Expect::kOutput},
            {"StringOfValues",
             "{{ 1|string }}{{ none|string }}{{ [1]|string }}{{ missing|string }}[{{ (missing|string) is string }}]",
             "", "1None[1][True]", Expect::kOutput},

            // Sequence filters: length/count, first/last, list, join (with attribute), sort (case-insensitive by
            // default,
            // stable, by attribute), unique, reverse, min/max, sum, batch, map, select/reject, selectattr/rejectattr,
            // groupby, dictsort, items.
            {"Length", "{{ l|length }} {{ 'héllo'|length }} {{ d|count }} {{ missing|length }} {{ ''|length }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "3 5 2 0 0", Expect::kOutput},
            {"FirstLast", "{{ l|first }}{{ l|last }}[{{ []|first }}]{{ 'abc'|first }}{{ 'abc'|last }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "32[]ac", Expect::kOutput},
            {"FirstOfEmptyIsUndefined", "{{ ([]|first) is defined }}", "", "False", Expect::kOutput},
            {"LastOfNoneFails", "{{ none|last }}", "", "TypeError: 'NoneType' object is not reversible",
             Expect::kRuntimeError},
            {"ListFilter", "{{ 'ab'|list }}{{ d|list }}{{ missing|list }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "['a', 'b']['b', 'a'][]", Expect::kOutput},
            {"Join", "{{ ['a', 'b']|join(', ') }} {{ [1, 2]|join }} {{ msgs|join('|', attribute='role') }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "a, b 12 system|user|assistant", Expect::kOutput},
            {"Sort",
             "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ [3, "
             "1, 2]|sort(reverse=true) }} {{ msgs|sort(attribute='role')|map(attribute='role')|list }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "[1, 2, 3] ['A', 'a', 'b'] ['A', 'a', 'b'] [3, 2, 1] ['assistant', 'system', 'user']", Expect::kOutput},
            {"SortMixedTypesFails", "{{ [1, 'a']|sort }}", "",
             "TypeError: '<' not supported between instances of 'str' and 'int'", Expect::kRuntimeError},
            {"Unique",
             "{{ ['b', 'A', 'a']|unique|list }} {{ ['a', 'A']|unique(case_sensitive=true)|list }} {{ [1, 1.0, true, "
             "2]|unique|list }}",
             "", "['b', 'A'] ['a', 'A'] [1, 2]", Expect::kOutput},
            {"Reverse", "{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }} {{ d|reverse|list }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "[3, 2, 1] cba ['a', 'b']", Expect::kOutput},
            {"MinMaxSum",
             "{{ ['B', 'a', 'C']|max }} {{ ['B', 'a', 'C']|min(case_sensitive=true) }} {{ [3, 1]|sum }} {{ [1, "
             "2]|sum(start=10) }} {{ [{'v': 1}, {'v': 2}]|sum(attribute='v') }} [{{ []|max }}]",
             "", "C B 4 13 3 []", Expect::kOutput},
            {"Batch", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }}", "",
             "[[1, 2], [3, 4], [5]] [[1, 2], [3, 'x']]", Expect::kOutput},
            {"MapAttribute",
             "{{ msgs|map(attribute='role')|join(',') }} {{ [{'a': {'b': 1}}]|map(attribute='a.b')|list }} {{ [{'a': "
             "[5, 6]}]|map(attribute='a.1')|list }} {{ [{}]|map(attribute='a', default='D')|list }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "system,user,assistant [1] [6] ['D']", Expect::kOutput},
            {"MapFilter",
             "{{ ['a', 'b']|map('upper')|join }} {{ [1.5, 2.5]|map('round')|list }} {{ ['x']|map('replace', 'x', "
             "'y')|list }} {{ none|map('upper')|list }}",
             "", "AB [2.0, 2.0] ['y'] []", Expect::kOutput},
            {"SelectReject",
             "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 0, 2]|select|list }} {{ [1, 2, 3]|reject('even')|list }} {{ "
             "[1, 2, 3]|select('in', [1, 3])|list }} {{ [1, 2, 3]|select('gt', 1)|list }} {{ none|select|list }}",
             "", "[1, 3] [1, 2] [1, 3] [1, 3] [2, 3] []", Expect::kOutput},
            {"SelectAttr",
             "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ "
             "msgs|selectattr('tool_calls')|list|length }} {{ msgs|rejectattr('tool_calls', 'defined')|list|length }} "
             "{{ msgs|selectattr('role', 'in', ['user', 'system'])|list|length }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "['hi there'] 1 2 2", Expect::kOutput},
            {"GroupBy",
             "{% for role, group in [{'r': 'a', 'v': 1}, {'r': 'B', 'v': 2}, {'r': 'A', 'v': 3}]|groupby('r') %}{{ "
             "role }}={{ group|map(attribute='v')|list }};{% endfor %}",
             "", "a=[1, 3];B=[2];", Expect::kOutput},
            {"DictSort", "{{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "[('a', 1), ('b', 2)] [('b', 2), ('a', 1)] [('b', 1), ('a', 2)]", Expect::kOutput},
            {"DictSortOfListFails", "{{ [1]|dictsort }}", "", "AttributeError: 'list' object has no attribute 'items'",
             Expect::kRuntimeError},
            {"Items", "{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %} {{ missing|items|list }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "b2a1 []", Expect::kOutput},
            {"ItemsOfListFails", "{{ [1]|items|list }}", "", "TypeError: Can only get item pairs from a mapping.",
             Expect::kRuntimeError},

            // Number filters: int and float parse Python literals and fall back to their default, abs, round (Python's
            // round-half-even on the exact double, or ceil/floor).
            {"IntFilter",
             "{{ '4'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ 7.9|int }} {{ ' 42 '|int }} {{ "
             "'1_000'|int }} {{ '0x1A'|int(0, 16) }} {{ '0b101'|int(base=2) }} {{ true|int }}",
             "", "5 4 0 -1 7 42 1000 26 5 1", Expect::kOutput},
            {"FloatFilter",
             "{{ '3.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ '1e3'|float }} {{ 'inf'|float }} {{ none|float }}", "",
             "3.5 3.0 0.0 1000.0 inf 0.0", Expect::kOutput},
            {"IntOfUndefinedFails", "{{ missing|int }}", "", "UndefinedError: 'missing' is undefined",
             Expect::kRuntimeError},
            {"Abs", "{{ -3|abs }} {{ (-2.5)|abs }} {{ true|abs }}", "", "3 2.5 1", Expect::kOutput},
            {"Round",
             "{{ 3.14159|round(3) }} {{ 2.675|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 0.5|round }} {{ "
             "-1.5|round }} {{ 1.21|round(1, 'ceil') }} {{ 1.29|round(1, 'floor') }} {{ 7|round }} {{ 7|round(2, "
             "'ceil') }}",
             "", "3.142 2.67 2.0 4.0 0.0 -2.0 1.3 1.2 7 7.0", Expect::kOutput},

            // Defaults and JSON: default replaces only Undefined unless boolean=true; tojson is transformers'
            // json.dumps
            // (ensure_ascii=False, ", " and ": " separators; "," when indenting), keeping the context's key order.
            {"Default",
             "{{ x|default('d') }} [{{ ''|default('d') }}] {{ ''|default('d', true) }} {{ none|default('d') }} {{ "
             "x|d('e') }} {{ x|default }}",
             "", "d [] d None e ", Expect::kOutput},
            {"ToJson", "{{ {'a': [1, 'é', {'b': none}], 'c': 1.0, 'd': true}|tojson }}", "",
             R"jinja({"a": [1, "é", {"b": null}], "c": 1.0, "d": true})jinja", Expect::kOutput},
            {"ToJsonIndent", "{{ {'a': [1, 2], 'e': {}, 'f': []}|tojson(indent=2) }}", "",
             "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": {},\n  \"f\": []\n}", Expect::kOutput},
            {"ToJsonOptions",
             R"jinja({{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }} {{ 'é\u0001"\n'|tojson }} {{ 'é🎉'|tojson(ensure_ascii=true) }} {{ {1: 2, none: 3, true: 4}|tojson }})jinja",
             "", R"jinja({"a": 2, "b": 1} [1,2] "é\u0001\"\n" "\u00e9\ud83c\udf89" {"1": 4, "null": 3})jinja",
             Expect::kOutput},
            {"ToJsonContextKeepsKeyOrder", "{{ msgs[2]|tojson }}", R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             R"jinja({"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]})jinja",
             Expect::kOutput},
            {"ToJsonIndentString", "{{ msgs[2].tool_calls|tojson(indent='\\t') }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "[\n\t{\n\t\t\"function\": {\n\t\t\t\"name\": \"f\",\n\t\t\t\"arguments\": {\n\t\t\t\t\"x\": "
             "1,\n\t\t\t\t\"y\": \"é\"\n\t\t\t}\n\t\t}\n\t}\n]",
             Expect::kOutput},
            {"ToJsonUndefinedFails", "{{ missing|tojson }}", "",
             "TypeError: Object of type Undefined is not JSON serializable", Expect::kRuntimeError},
            {"ToJsonNamespaceFails", "{{ namespace(a=1)|tojson }}", "",
             "TypeError: Object of type Namespace is not JSON serializable", Expect::kRuntimeError},

            // Tests (`is`): types follow Python (bool is a number, Undefined is iterable and a sequence), defined/none,
            // odd/even/divisibleby, comparisons, `in`, sameas (identity), filter/test names; `is not` negates.
            {"TypeTests",
             "{{ 1 is number }}{{ true is number }}{{ true is boolean }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 "
             "is float }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is sequence }}{{ 'a' is iterable }}{{ x is "
             "iterable }}{{ x is sequence }}{{ none is none }}{{ x is callable }}{{ range is callable }}",
             "", "TrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue", Expect::kOutput},
            {"DefinedTests",
             "{{ x is defined }}{{ x is undefined }}{{ x is not defined }}{{ none is defined }}{{ none is not none }}",
             "", "FalseTrueTrueTrueFalse", Expect::kOutput},
            {"NumberTests",
             "{{ 2 is even }}{{ 3 is odd }}{{ 6 is divisibleby 3 }}{{ 6 is divisibleby(4) }}{{ 5 is ge 5 }}{{ 5 is lt "
             "6 }}{{ 5 is ne 5 }}{{ 5 is greaterthan 4 }}{{ 5 is lessthan 4 }}{{ 5 is == 5 }}{{ 5 is eq 5 }}{{ 'a' is "
             "equalto 'a' }}",
             "", "chat template syntax error", Expect::kSyntaxError},
            {"BooleanTests", "{{ 1 is true }}{{ true is true }}{{ false is false }}{{ 0 is false }}", "",
             "FalseTrueTrueFalse", Expect::kOutput},
            {"CaseTests", "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aBc' is lower }}{{ '123' is upper }}", "",
             "TrueTrueFalseFalse", Expect::kOutput},
            {"InAndSameasTests",
             "{{ 'abc' is in 'xabcx' }}{{ 1 is in [1] }}{% set a = [1] %}{% set b = a %}{{ a is sameas b }}{{ a is "
             "sameas [1] }}{{ none is sameas none }}",
             "", "TrueTrueTrueFalseTrue", Expect::kOutput},
            {"FilterAndTestNames", "{{ 'upper' is filter }}{{ 'odd' is test }}{{ 'nope' is filter }}", "",
             "TrueTrueFalse", Expect::kOutput},
            {"OddOfStringFails", "{{ 'a' is odd }}", "",
             "TypeError: not all arguments converted during string formatting", Expect::kRuntimeError},
            {"UnknownTestFails", "{{ 1 is nonsense }}", "", "TemplateAssertionError: No test named 'nonsense'.",
             Expect::kRuntimeError},
            {"UnknownFilterFails", "{{ 1|nonsense }}", "", "TemplateAssertionError: No filter named 'nonsense'.",
             Expect::kRuntimeError},
            {"UnknownFilterInUntakenBranch", "{% if false %}{{ 1|nonsense }}{% endif %}ok", "", "ok", Expect::kOutput},

            // Methods of str, dict and list, as Python defines them; methods that would mutate a list or dict are
            // refused
            // by the immutable sandbox (SecurityError).
            {"StripMethods",
             R"jinja([{{ '  x '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\nx\n'.lstrip('\n') }}][{{ 'abc'.rstrip('c') }}])jinja",
             "", "[x][a][x\n][ab]", Expect::kOutput},
            {"SplitMethods",
             "{{ ' a b  c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '  a  b  '.split(none, "
             "1) }} {{ '  a  b  '.rsplit(none, 1) }} {{ 'a.b.c'.rsplit('.', 1) }}",
             "", "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a', 'b  '] ['  a', 'b'] ['a.b', 'c']",
             Expect::kOutput},
            {"SplitEmptySeparatorFails", "{{ 'abc'.split('') }}", "", "ValueError: empty separator",
             Expect::kRuntimeError},
            {"SplitThink",
             R"jinja({% set c = '<think>\nr\n</think>\n\nanswer' %}[{{ c.split('</think>')[-1].lstrip('\n') }}][{{ c.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}])jinja",
             "", "[answer][r]", Expect::kOutput},
            {"Splitlines", R"jinja({{ 'a\r\nb\rc\nd'.splitlines() }} {{ 'a\nb\n'.splitlines(true) }})jinja", "",
             R"jinja(['a', 'b', 'c', 'd'] ['a\n', 'b\n'])jinja", Expect::kOutput},
            {"PrefixSuffix",
             "{{ s.startswith('Hello') }}{{ s.endswith(('x', 'World')) }}{{ 'x'.startswith('') }}{{ "
             "'abc'.startswith('b', 1) }}{{ s.removeprefix('Hello ') }}{{ s.removesuffix('World') }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "TrueTrueTrueTrueWorldHello ", Expect::kOutput},
            {"CaseMethods",
             R"jinja({{ s.upper() }} {{ s.lower() }} {{ 'hello world'.title() }} {{ "they're bill's".title() }} {{ 'HELLO'.capitalize() }} {{ 'Hi'.swapcase() }} {{ 'Straße'.casefold() }})jinja",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "HELLO WORLD hello world Hello World They'Re Bill'S Hello hI strasse", Expect::kOutput},
            {"FindAndCount",
             "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('z') }} {{ 'abc'.find('c', -1) }} {{ 'aaa'.count('a') }} "
             "{{ s.index('W') }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "4 7 -1 2 3 6", Expect::kOutput},
            {"IndexMissingFails", "{{ 'abc'.index('z') }}", "", "ValueError: substring not found",
             Expect::kRuntimeError},
            {"ReplaceMethod", "{{ s.replace('o', '0') }} {{ s.replace('o', '0', 1) }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "Hell0 W0rld Hell0 World", Expect::kOutput},
            {"PredicateMethods",
             "{{ '123'.isdigit() }}{{ 'abc'.isalpha() }}{{ 'a1'.isalnum() }}{{ ' '.isspace() }}{{ 'ABC'.isupper() }}{{ "
             "'abc'.islower() }}{{ ''.isdigit() }}",
             "", "TrueTrueTrueTrueTrueTrueFalse", Expect::kOutput},
            {"PaddingMethods",
             "{{ '7'.zfill(3) }} {{ '-7'.zfill(4) }} {{ 'a'.ljust(3, '*') }} {{ 'a'.rjust(3) }} {{ 'a'.center(5, '-') "
             "}}",
             "", "007 -007 a**   a --a--", Expect::kOutput},
            {"JoinAndFormat",
             "{{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format(1, 'two') }} {{ '{0}/{name}'.format(1, name='n') }} {{ "
             "'a-b'.partition('-') }}",
             "", "a, b 1 and two 1/n ('a', '-', 'b')", Expect::kOutput},
            {"JoinNonStringFails", "{{ ', '.join([1, 2]) }}", "",
             "TypeError: sequence item 0: expected str instance, int found", Expect::kRuntimeError},
            {"DictMethods",
             "{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('zz') }} {{ "
             "d.get('zz', 5) }} {{ d.copy() }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "[('b', 2), ('a', 1)] ['b', 'a'] [2, 1] 1 None 5 {'b': 2, 'a': 1}", Expect::kOutput},
            {"ListMethods", "{{ [1, 2, 1].index(2) }} {{ (1, 2).count(2) }} {{ l.copy() }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "1 1 [3, 1, 2]", Expect::kOutput},
            {"MethodAsValue", "{% set up = s.upper %}{{ up() }} {{ s.upper is callable }}",
             R"jinja({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "é"}}}]}]})jinja",
             "HELLO WORLD True", Expect::kOutput},
            {"ListAppendIsUnsafe", "{% set l2 = [1] %}{{ l2.append(3) }}", "",
             "SecurityError: access to attribute 'append' of 'list' object is unsafe.", Expect::kRuntimeError},
            {"DictUpdateIsUnsafe", "{{ {'a': 1}.update({'b': 2}) }}", "",
             "SecurityError: access to attribute 'update' of 'dict' object is unsafe.", Expect::kRuntimeError},
            {"UnsafeMethodRendersEmpty", "[{{ [1, 2].append }}]", "", "[]", Expect::kOutput},
            {"UnknownMethodFails", "{{ 'ab'.nope() }}", "", "UndefinedError: 'str object' has no attribute 'nope'",
             Expect::kRuntimeError},
};

class BuiltinsTest : public ::testing::TestWithParam<JinjaCase> {};

TEST_P(BuiltinsTest, MatchesJinja2) { check_case(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Jinja, BuiltinsTest, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace kiln::tokenizer::jinja_testing
