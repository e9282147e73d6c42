// HfConfig's integer fields: what config.json may write for an integer and what it may not.
#include "checkpoint/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::HasSubstr;

std::string get_int_error(const char* json_text) {
  try {
    HfConfig::from_json(nlohmann::json::parse(json_text)).get_int("vocab_size");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfConfigTest, IntegersMayBeWrittenAsWholeFloats) {
  EXPECT_EQ(HfConfig::from_json(nlohmann::json::parse(R"({"vocab_size": 4096})")).get_int("vocab_size"), 4096);
  EXPECT_EQ(HfConfig::from_json(nlohmann::json::parse(R"({"vocab_size": 4096.0})")).get_int("vocab_size"), 4096);
  EXPECT_THAT(get_int_error(R"({"vocab_size": 1.5})"), HasSubstr("must be an integer"));
}

// Found by config_spec_fuzz: a float past int64's range was converted anyway (undefined behaviour), and an
// unsigned past it wrapped to a negative size.
TEST(HfConfigTest, IntegersOutsideInt64AreRefused) {
  EXPECT_THAT(get_int_error(R"({"vocab_size": 3.5e70})"), HasSubstr("'vocab_size' is too large"));
  EXPECT_THAT(get_int_error(R"({"vocab_size": -3.5e70})"), HasSubstr("'vocab_size' is too large"));
  EXPECT_THAT(get_int_error(R"({"vocab_size": 9223372036854775808.0})"), HasSubstr("too large"));
  EXPECT_THAT(get_int_error(R"({"vocab_size": 18446744073709551615})"), HasSubstr("too large"));
  EXPECT_EQ(HfConfig::from_json(nlohmann::json::parse(R"({"vocab_size": 9223372036854775807})")).get_int("vocab_size"),
            INT64_MAX);
}

}  // namespace
}  // namespace kiln::checkpoint
