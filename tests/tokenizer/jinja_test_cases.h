// Table-driven tests of the Jinja engine: each case renders a template with a JSON context and expects the
// output, or the error, that Jinja2 3.1.6 gives under transformers' settings (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks, raise_exception, transformers' tojson).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace kiln::tokenizer::jinja_testing {

enum class Expect {
  kOutput,        // renders to `expected`
  kRaised,        // raise_exception: the error message is exactly `expected`
  kRuntimeError,  // any other runtime error: "<Python exception type>: <message>"
  kSyntaxError,   // the template does not parse
};

struct JinjaCase {
  const char* name;
  const char* source;
  const char* context;  // a JSON object, or "" for none
  const char* expected;
  Expect expect;
};

inline std::string render_case(const JinjaCase& c) {
  const auto context = *c.context == '\0' ? nlohmann::ordered_json::object() : nlohmann::ordered_json::parse(c.context);
  return ChatTemplate(c.source).render(context);
}

inline void check_case(const JinjaCase& c) {
  SCOPED_TRACE(std::string("template: ") + c.source);
  switch (c.expect) {
    case Expect::kOutput: EXPECT_EQ(render_case(c), c.expected); return;
    case Expect::kRaised:
    case Expect::kRuntimeError:
      try {
        const std::string output = render_case(c);
        ADD_FAILURE() << "rendered " << output << " instead of failing with " << c.expected;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), c.expected);
      }
      return;
    case Expect::kSyntaxError:
      try {
        ChatTemplate parsed(c.source);
        ADD_FAILURE() << "parsed a template Jinja2 rejects";
      } catch (const Error& e) {
        EXPECT_EQ(std::string_view(e.what()).substr(0, 27), "chat template syntax error ");
      }
      return;
  }
}

// Failure messages name the case instead of dumping its bytes.
inline void PrintTo(const JinjaCase& c, std::ostream* out) { *out << c.name; }

inline std::string case_name(const ::testing::TestParamInfo<JinjaCase>& info) { return info.param.name; }

}  // namespace kiln::tokenizer::jinja_testing
