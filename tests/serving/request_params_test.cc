// parse_request_body: what a request body must be to be parsed at all.
#include "serving/request_params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;

ApiError error_of(const std::string& body) {
  try {
    parse_request_body(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError{0, "(no error)"};
}

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(ParseRequestBodyTest, ParsesJson) {
  EXPECT_EQ(
      parse_request_body(R"({"inputs": "x", "parameters": {"max_new_tokens": 3}})")["parameters"]["max_new_tokens"], 3);
  const std::string deepest = "{\"x\":" + nested(kMaxRequestJsonDepth - 1) + "}";
  EXPECT_EQ(parse_request_body(deepest).dump(), deepest);
}

TEST(ParseRequestBodyTest, RefusesWhatIsNotJson) {
  EXPECT_EQ(error_of("{not json").status, 400);
  EXPECT_THAT(error_of("{not json").message, HasSubstr("not valid JSON"));
  // Found by safetensors_fuzz in the same call elsewhere: nlohmann reports this as out_of_range, not parse_error.
  EXPECT_EQ(error_of(R"({"temperature": 1e999})").status, 400);
  EXPECT_THAT(error_of(R"({"temperature": 1e999})").message, HasSubstr("'temperature' is out of range"));
}

TEST(ParseRequestBodyTest, RefusesDeepNesting) {
  // Copying, freeing or rendering a document recurses per level: millions of levels would overflow the stack.
  EXPECT_EQ(error_of(nested(kMaxRequestJsonDepth + 1)).status, 400);
  EXPECT_THAT(error_of(nested(kMaxRequestJsonDepth + 1)).message, HasSubstr("more than 64 levels deep"));
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": )" + nested(1000000) + "}]}").status, 400);
}

}  // namespace
}  // namespace kiln::serving
