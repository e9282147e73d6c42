// Whitespace control and lexing: trim_blocks, lstrip_blocks, "-"/"+" markers, comments, raw blocks, literals and
// syntax errors. Expectations: Jinja2 3.1.6 configured as transformers configures it (each case was rendered by
// it; the group comments give the rule that decides the case).

#include "jinja_test_cases.h"

namespace kiln::tokenizer::jinja_testing {
namespace {

const JinjaCase kCases[] = {

    // trim_blocks: the first newline after a block tag ({% %}) is removed; nothing else is.
    {"TrimBlocksDropsNewlineAfterBlockTag", "a\n{% if true %}\nb\n{% endif %}\nc", "", "a\nb\nc", Expect::kOutput},
    {"TrimBlocksRemovesOnlyOneNewline", "{% if true %}\n\nx{% endif %}", "", "\nx", Expect::kOutput},
    {"TrimBlocksAppliesToSetTags", "{% set y = 1 %}\n{{ y }}", "", "1", Expect::kOutput},
    {"TrimBlocksAppliesToComments", "{{ 'a' }}{# c #}\n{{ 'b' }}", "", "ab", Expect::kOutput},
    {"TrimBlocksDoesNotApplyToExpressions", "{{ x }}\n{{ x }}\nz", R"jinja({"x": "X", "items": [1, 2]})jinja",
     "X\nX\nz", Expect::kOutput},
    {"PlusAtBlockEndKeepsNewline", "{% if true +%}\nx{% endif %}", "", "\nx", Expect::kOutput},
    {"ForLoopLinesStayClean", "{% for i in items %}\n  - {{ i }}\n{% endfor %}\n",
     R"jinja({"x": "X", "items": [1, 2]})jinja", "  - 1\n  - 2\n", Expect::kOutput},

    // lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are removed, never
    // before an expression, and not when other text precedes the tag on its line.
    {"LstripBlocksIndentedTags", "a\n  {% if true %}\n  b\n  {% endif %}\nc", "", "a\n  b\nc", Expect::kOutput},
    {"LstripBlocksAtTemplateStart", "  {% if true %}x{% endif %}", "", "x", Expect::kOutput},
    {"LstripBlocksNotAfterText", "a  {% if true %}x{% endif %}", "", "a  x", Expect::kOutput},
    {"LstripBlocksNotBeforeExpressions", "a\n  {{ x }}", R"jinja({"x": "X", "items": [1, 2]})jinja", "a\n  X",
     Expect::kOutput},
    {"LstripBlocksComment", "a\n  {# comment #}\nb", "", "a\nb", Expect::kOutput},
    {"LstripBlocksUnicodeSpace", "a\n　{% if true %}x{% endif %}", "", "a\nx", Expect::kOutput},
    {"LstripBlocksAfterExpressionLine", "{{ x }}\n  {% if true %}y{% endif %}",
     R"jinja({"x": "X", "items": [1, 2]})jinja", "X\ny", Expect::kOutput},
    {"LstripBlocksAfterTrimmedBlock", "text\n    {% set y = 2 %}\n    {{ y }}", "", "text\n    2", Expect::kOutput},
    {"PlusAtBlockStartKeepsIndent", "a\n  {%+ if true %}x{% endif %}", "", "a\n  x", Expect::kOutput},
    {"NestedIndentedLoop", "{% for m in items %}\n    {% if m == 1 %}\n        {{ m }}\n    {% endif %}\n{% endfor %}",
     R"jinja({"x": "X", "items": [1, 2]})jinja", "        1\n", Expect::kOutput},

    // Explicit whitespace control: "-" strips all whitespace (newlines included) on its side of the tag.
    {"MinusStripsBothSides", "a {%- if true -%} b {%- endif -%} c", "", "abc", Expect::kOutput},
    {"MinusStripsNewlinesAndIndent", "{% if true -%}   \n\n  x  {%- endif %}  y", "", "x  y", Expect::kOutput},
    {"MinusOnExpressions", "  {{ x }}  \n  {{- x -}}  \n  {{ x }}", R"jinja({"x": "X", "items": [1, 2]})jinja", "  XXX",
     Expect::kOutput},
    {"MinusOnStringExpression", "x {{- ' y ' -}} z", "", "x y z", Expect::kOutput},
    {"MinusBeforeTagAfterExpression", "{{ 'x' }}   {%- if true %}y{% endif %}", "", "xy", Expect::kOutput},
    {"MinusTabsBeforeTag", "\t {%- if true %}x{% endif %}", "", "x", Expect::kOutput},
    {"MinusOnComments", "a\n  {#- comment -#}\n  b", "", "ab", Expect::kOutput},
    {"CommentOnlyTemplate", "{#- only comment -#}\n\nz", "", "z", Expect::kOutput},
    {"PlusOnCommentEndKeepsNewline", "a\n  {# comment +#}\nb", "", "a\n\nb", Expect::kOutput},
    {"QwenStyleDashedBlocks",
     "{%- for m in items %}\n    {%- if m == 1 %}\n        {{- '<one>' }}\n    {%- else %}\n        {{- '<' ~ m ~ '>' "
     "}}\n    {%- endif %}\n{%- endfor %}",
     R"jinja({"x": "X", "items": [1, 2]})jinja", "<one><2>", Expect::kOutput},

    // Template text: newlines are normalized to \n and one trailing newline is dropped (keep_trailing_newline is
    // off); comments vanish.
    {"TrailingNewlineDropped", "{{ x }}\n", R"jinja({"x": "X", "items": [1, 2]})jinja", "X", Expect::kOutput},
    {"OnlyOneTrailingNewlineDropped", "{{ x }}\n\n", R"jinja({"x": "X", "items": [1, 2]})jinja", "X\n",
     Expect::kOutput},
    {"CrLfNormalized", "line1\r\nline2\r{{ x }}\r\n", R"jinja({"x": "X", "items": [1, 2]})jinja", "line1\nline2\nX",
     Expect::kOutput},
    {"CommentRemoved", "a {# comment #} b", "", "a  b", Expect::kOutput},
    {"NewlineAfterEndifAtEnd", "{% if true %}x{% endif %}\n", "", "x", Expect::kOutput},
    {"BlankLineBeforeBlock", "   \n{% if true %}x{% endif %}", "", "   \nx", Expect::kOutput},
    {"NonAsciiTextBeforeTag", "é  {% if true %}x{% endif %}", "", "é  x", Expect::kOutput},

    // {% raw %}: its body is text; the raw tag itself takes "-" but not trim_blocks, the endraw tag takes both.
    {"RawKeepsTags", "{% raw %}\n  {{ x }} {% if %}\n{% endraw %}\nz", "", "\n  {{ x }} {% if %}\nz", Expect::kOutput},
    {"RawIndented", "a\n  {% raw %}{{ x }}{% endraw %}\n  b", "", "a\n{{ x }}  b", Expect::kOutput},
    {"RawWithMinus", "{%- raw -%}  {{ x }}  {%- endraw -%}  !", "", "{{ x }}!", Expect::kOutput},

    // Tokens inside tags: dict braces nest inside {{ }}, adjacent strings concatenate, escapes follow Python.
    {"NestedDictBraces", "{{ {'a': {'b': 1}} }}", "", "{'a': {'b': 1}}", Expect::kOutput},
    {"NestedDictBracesNoSpace", "{{ {'a': {'b': 1}}}}", "", "{'a': {'b': 1}}", Expect::kOutput},
    {"AdjacentStringLiterals", R"jinja({{ 'a' 'b' "c" }})jinja", "", "abc", Expect::kOutput},
    {"StringEscapes", R"jinja({{ '\u00e9\x41\n\t\\' }}|{{ 'a\qb' }}|{{ "it's" }}|{{ 'it\'s' }})jinja", "",
     "éA\n\t\\|a\\qb|it's|it's", Expect::kOutput},
    {"NumberLiterals", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b11 }} {{ 1.5e3 }} {{ 2e-3 }} {{ 12.5E+3 }}", "",
     "1000 31 15 3 1500.0 0.002 12500.0", Expect::kOutput},
    {"IntegerAttributeIsIndex", "{{ items.0 }}{{ items.1 }}", R"jinja({"x": "X", "items": [1, 2]})jinja", "12",
     Expect::kOutput},

    // Syntax errors Jinja2 reports when compiling.
    {"UnclosedExpression", "{{ x }\n", "", "chat template syntax error", Expect::kSyntaxError},
    {"IfWithoutCondition", "{% if %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"MissingEndif", "{% if true %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"StrayEndif", "{% endif %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"ForWithoutTarget", "{% for %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"UnknownTag", "{% foo %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"DanglingOperator", "{{ 1 + }}", "", "chat template syntax error", Expect::kSyntaxError},
    {"UnbalancedParenthesis", "{{ (1 }}", "", "chat template syntax error", Expect::kSyntaxError},
    {"MismatchedBrackets", "{{ x ]] }}", "", "chat template syntax error", Expect::kSyntaxError},
    {"UnclosedComment", "{# unclosed", "", "chat template syntax error", Expect::kSyntaxError},
    {"UnterminatedString", "{{ 'unterminated }}", "", "chat template syntax error", Expect::kSyntaxError},
    {"WrongEndTag", "{% for i in items %}{% endif %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"BreakOutsideLoop", "{% break %}", "", "chat template syntax error", Expect::kSyntaxError},
    {"BreakInMacroOutsideLoop", "{% macro m() %}{% break %}{% endmacro %}", "", "chat template syntax error",
     Expect::kSyntaxError},
    {"ChainedTests", "{{ x is defined is none }}", "", "chat template syntax error", Expect::kSyntaxError},
    {"DoTagNeedsExtension", "{% do x.append(1) %}", "", "chat template syntax error", Expect::kSyntaxError},
};

class WhitespaceTest : public ::testing::TestWithParam<JinjaCase> {};

TEST_P(WhitespaceTest, MatchesJinja2) { check_case(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Jinja, WhitespaceTest, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace kiln::tokenizer::jinja_testing
