// The bounds of a render (jinja_limits.h): templates that would create huge strings or lists, run for ever or
// recurse without end fail fast with a TemplateLimitError that names the bound, instead of holding the thread.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace kiln::tokenizer {
namespace {

using ::testing::HasSubstr;

// The error of rendering `source` with a small conversation, checking that it came well under a second.
std::string render_error(const std::string& source) {
  const auto start = std::chrono::steady_clock::now();
  std::string message = "(no error)";
  try {
    ChatTemplate(source).render(nlohmann::json{{"messages", {{{"role", "user"}, {"content", "Hello"}}}}});
  } catch (const Error& e) {
    message = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 0.5) << source;
  return message;
}

TEST(JinjaLimitsTest, HugeStringRepetitionFailsFast) {
  EXPECT_THAT(render_error("{{ 'a' * 1000000000 }}"),
              HasSubstr("TemplateLimitError: the chat template would create a string of 1000000000 bytes"));
  EXPECT_THAT(render_error("{{ 1000000000 * 'ab' }}"), HasSubstr("would create a string of 2000000000 bytes"));
  // Overflowing the size is no way around it.
  EXPECT_THAT(render_error("{{ 'abc' * 9223372036854775807 }}"), HasSubstr("TemplateLimitError"));
}

TEST(JinjaLimitsTest, HugeListRepetitionFailsFast) {
  EXPECT_THAT(render_error("{{ [1] * 99999999 }}"),
              HasSubstr("TemplateLimitError: the chat template would create a list of 99999999 items"));
  EXPECT_THAT(render_error("{{ (1, 2) * 99999999 }}"), HasSubstr("list of 199999998 items"));
}

TEST(JinjaLimitsTest, HugePaddingFailsFast) {
  EXPECT_THAT(render_error("{{ 'ab' | center(99999999) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ 'ab'.ljust(99999999) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ '7'.zfill(999999999999) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ '%999999999s' % 'x' }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ '%99999999999999999999d' % 1 }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ ('a\\n' * 1000) | indent(99999999) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ [[[1]]] | tojson(indent=99999999) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{{ [1] | batch(999999999, 0) }}"), HasSubstr("TemplateLimitError"));
}

TEST(JinjaLimitsTest, AmplifyingStringsFailsFast) {
  // Each step is within bounds; their product is not.
  EXPECT_THAT(render_error("{% set s = 'a' * 1000000 %}{{ s | replace('a', s) }}"), HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{% set s = 'a' * 1000000 %}{{ (range(100) | list) | join(s * 10) }}"),
              HasSubstr("TemplateLimitError"));
  EXPECT_THAT(render_error("{% set s = 'a' * 10000000 %}{{ '{0}{0}{0}{0}{0}{0}{0}{0}'.format(s) }}"),
              HasSubstr("TemplateLimitError"));
  // The output itself is bounded, however it is made.
  EXPECT_THAT(render_error("{% set s = 'a' * 10000000 %}{% for i in range(10) %}{{ s }}{% endfor %}"),
              HasSubstr("would create a string of"));
  // And so is all the text a render creates or copies, even when none of it is kept.
  EXPECT_THAT(render_error("{% set s = 'a' * 30000000 %}{% for i in range(100) %}{% set t = s %}{% endfor %}"),
              HasSubstr("bytes of strings and lists in one render"));
}

TEST(JinjaLimitsTest, HugeLoopsFailFast) {
  EXPECT_THAT(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
              HasSubstr("TemplateLimitError: the chat template took more than 5000000 evaluation steps"));
  EXPECT_THAT(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}"
                           "{% endfor %}"),
              HasSubstr("evaluation steps"));
  // range() itself is capped as in Jinja2's sandbox.
  EXPECT_THAT(render_error("{% for i in range(1000000000) %}{% endfor %}"), HasSubstr("Range too big"));
}

TEST(JinjaLimitsTest, DeepRecursionFailsFast) {
  EXPECT_EQ(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            "RecursionError: maximum recursion depth exceeded");
  // Mutual recursion, and recursion through many nested statements, is bounded by the depth of the evaluation.
  EXPECT_THAT(render_error("{% macro f(n) %}{% if true %}{% if true %}{% if true %}{% if true %}{% if true %}"
                           "{{ g(n) }}{% endif %}{% endif %}{% endif %}{% endif %}{% endif %}{% endmacro %}"
                           "{% macro g(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              HasSubstr("TemplateLimitError: the chat template nests more than 1000 levels deep"));
  // Recursive loops too.
  EXPECT_EQ(render_error("{% set x = [[1]] %}{% for i in x recursive %}{{ loop(x) }}{% endfor %}"),
            "RecursionError: maximum recursion depth exceeded");
}

TEST(JinjaLimitsTest, DeeplyNestedTemplatesAreRefusedWhenParsed) {
  EXPECT_THAT(render_error("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}"),
              HasSubstr("TemplateLimitError: statements and expressions nest more than 256 levels deep"));
  EXPECT_THAT(render_error("{{ [" + std::string(100000, '[') + std::string(100000, ']') + "] }}"),
              HasSubstr("nest more than"));
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_THAT(render_error(chain + " }}"), HasSubstr("nest more than"));
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i) filters += " | trim";
  EXPECT_THAT(render_error(filters + " }}"), HasSubstr("nest more than"));
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_THAT(render_error(nots + "1 }}"), HasSubstr("nest more than"));
  std::string ifs;
  for (int i = 0; i < 10000; ++i) ifs += "{% if true %}";
  for (int i = 0; i < 10000; ++i) ifs += "{% endif %}";
  EXPECT_THAT(render_error(ifs), HasSubstr("nest more than"));
}

// Found by jinja_fuzz (the lists) and by looking for its neighbours: values nested too deep overflowed the stack
// when printed or freed, and a namespace holding itself recursed for ever when printed.
TEST(JinjaLimitsTest, DeeplyNestedValuesFailFast) {
  EXPECT_THAT(render_error("{% set ns = namespace(a=[]) %}{% for i in range(100000) %}{% set ns.a = [ns.a] %}"
                           "{% endfor %}{{ ns.a }}"),
              HasSubstr("TemplateLimitError: the chat template would nest lists and dicts more than 500 deep"));
  EXPECT_THAT(render_error("{% set ns = namespace(a={}) %}{% for i in range(100000) %}{% set ns.a = {'k': ns.a} %}"
                           "{% endfor %}"),
              HasSubstr("nest lists and dicts more than 500 deep"));
  EXPECT_THAT(render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"),
              HasSubstr("TemplateLimitError: the chat template nests more than 1000 levels deep"));
  EXPECT_THAT(render_error("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}"),
              HasSubstr("TemplateLimitError"));
  // A namespace holding itself is freed with the render (LeakSanitizer would say otherwise).
  EXPECT_EQ(ChatTemplate("{% set ns = namespace() %}{% set ns.me = ns %}ok").render(nlohmann::json::object()), "ok");
}

TEST(JinjaLimitsTest, ModerateTemplatesStayWithinTheLimits) {
  // Real chat templates need far less: a long conversation, a loop of a few thousand, text of a few MiB.
  nlohmann::json messages = nlohmann::json::array();
  for (int i = 0; i < 2000; ++i) messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "hi"}});
  ChatSettings settings;
  settings.template_source = std::string(kChatMlTemplate);
  EXPECT_EQ(apply_chat_template(settings, messages, true).size(), 1000u * 30 + 1000 * 35 + 22);
  EXPECT_EQ(ChatTemplate("{{ ('x' * 1000000 + '\\n') * 8 }}").render(nlohmann::json::object()).size(), 8000008u);
  EXPECT_EQ(ChatTemplate("{% for i in range(1000) %}{% for j in range(100) %}.{% endfor %}{% endfor %}")
                .render(nlohmann::json::object())
                .size(),
            100000u);
  EXPECT_EQ(ChatTemplate("{{ [[[[[[[[[[1]]]]]]]]]] | tojson }}").render(nlohmann::json::object()),
            "[[[[[[[[[[1]]]]]]]]]]");
  EXPECT_EQ(ChatTemplate("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}.{% endif %}{% endmacro %}{{ f(100) }}")
                .render(nlohmann::json::object()),
            std::string(100, '.'));
}

}  // namespace
}  // namespace kiln::tokenizer
