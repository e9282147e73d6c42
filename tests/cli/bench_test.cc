// kiln bench on a small fixture engine: every measure present and positive,
// the token counts what was asked, limits skipped with a message, bad options refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

class Bench : public LlamaEngineSuite {};

void expect_positive(const nlohmann::json& j, const char* key) {
  ASSERT_TRUE(j.contains(key)) << key << " missing from " << j.dump();
  ASSERT_TRUE(j[key].is_number()) << key << " in " << j.dump();
  EXPECT_GT(j[key].get<double>(), 0) << key << " in " << j.dump();
}

TEST_F(Bench, ReportsEveryMeasure) {
  const fs::path json = dir_->path() / "bench.json";
  const auto r =
      run_kiln("bench " + engine().string() +
               " --input-len 8 --output-len 8 --batches 1,2 --ttft-len 16 --roofline-gbps 10 --json " + json.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("batch-1 decode"));
  EXPECT_THAT(r.output, HasSubstr("roofline_ratio"));
  const auto j = read_json(json);

  expect_positive(j, "load_seconds");
  expect_positive(j, "weight_bytes");
  expect_positive(j, "decode_read_bytes");
  EXPECT_LE(j["decode_read_bytes"].get<uint64_t>(), j["weight_bytes"].get<uint64_t>());
  expect_positive(j, "roofline_ratio");
  EXPECT_EQ(j["input_len"], 8);
  EXPECT_EQ(j["output_len"], 8);

  const auto& decode = j["decode"];
  expect_positive(decode, "ttft_seconds");
  expect_positive(decode, "tokens_per_second");
  expect_positive(decode, "seconds");
  EXPECT_EQ(decode["output_tokens"], 8);

  ASSERT_EQ(j["throughput"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& row = j["throughput"][i];
    const int batch = static_cast<int>(i) + 1;
    EXPECT_EQ(row["batch"], batch);
    EXPECT_EQ(row["concurrent_batch"], batch);  // the fixture engine runs up to 8 at once
    EXPECT_EQ(row["output_tokens"], batch * 8);
    expect_positive(row, "seconds");
    expect_positive(row, "output_tokens_per_second");
    expect_positive(row, "per_sequence_tokens_per_second");
    expect_positive(row, "mean_ttft_seconds");
  }

  const auto& ttft = j["long_prompt_ttft"];
  EXPECT_EQ(ttft["input_len"], 16);
  EXPECT_EQ(ttft["output_tokens"], 1);
  expect_positive(ttft, "ttft_seconds");
  expect_positive(ttft, "prompt_tokens_per_second");
}

TEST_F(Bench, SkipsWhatTheEngineCannotRun) {
  // The fixture engine's limits: batch 8, input and output 256.
  const fs::path json = dir_->path() / "skip.json";
  const auto r = run_kiln("bench " + engine().string() +
                          " --input-len 8 --output-len 300 --batches 12 --ttft-len 1000 --json " + json.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("300 new tokens exceed the engine's max_output_len 256"));
  EXPECT_THAT(r.output, HasSubstr("1000 prompt tokens exceed the engine's max_input_len 256"));
  const auto j = read_json(json);
  EXPECT_TRUE(j["decode"].contains("skipped"));
  EXPECT_EQ(j["throughput"][0]["concurrent_batch"], 8);
  EXPECT_TRUE(j["throughput"][0].contains("skipped"));
  EXPECT_TRUE(j["long_prompt_ttft"].contains("skipped"));
  EXPECT_FALSE(j.contains("roofline_ratio"));
}

TEST_F(Bench, RefusesBadOptions) {
  for (const std::string option :
       {"--batches 1,x", "--batches 0", "--output-len 1", "--input-len 0", "--roofline-gbps -1", "--ttft-len -5"}) {
    const auto r = run_kiln("bench " + engine().string() + " " + option);
    EXPECT_NE(r.status, 0) << option;
    EXPECT_THAT(r.output, HasSubstr(option.substr(0, option.find(' ')))) << r.output;
  }
  const auto missing = run_kiln("bench " + (dir_->path() / "absent").string());
  EXPECT_NE(missing.status, 0);
  EXPECT_THAT(missing.output, HasSubstr("absent"));
}

}  // namespace
}  // namespace kiln::test
