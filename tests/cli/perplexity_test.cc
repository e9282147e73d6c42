// kiln perplexity on the demo model over demo/heldout.txt, against
// transformers in float64 on the same checkpoint, tokens and chunks
// (bench/hf_perplexity.py, run on the GPU machine; its output is
// tests/cli/data/demo_heldout_perplexity.json). The fp16 demo engine on the
// CPU computes in fp32 on exact weights, so its perplexity must match to the
// accumulated fp32 rounding; a bf16 engine against the fp16 one as base shows
// a small, non-zero KL divergence, and an engine against itself none.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

class Perplexity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    for (const char* dtype : {"fp16", "bf16"}) {
      const auto r = run_kiln(std::string("build -q --dtype ") + dtype + " --model " + demo_model() + " --output " +
                              (dir_->path() / dtype).string());
      ASSERT_EQ(r.status, 0) << r.output;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string engine(const char* dtype) { return (dir_->path() / dtype).string(); }
  static std::string text() { return std::string(KILN_SOURCE_DIR) + "/demo/heldout.txt"; }
  static nlohmann::json run_json(const std::string& args) {
    const auto r = run_kiln("perplexity --json --text " + text() + " " + args);
    EXPECT_EQ(r.status, 0) << r.output;
    const auto last = r.output.find_last_of('\n', r.output.size() - 2);
    return nlohmann::json::parse(r.output.substr(last == std::string::npos ? 0 : last + 1));
  }
  static inline TempDir* dir_ = nullptr;
};

TEST_F(Perplexity, MatchesTransformersInFloat64) {
  const auto refs = read_json(std::string(KILN_SOURCE_DIR) + "/tests/cli/data/demo_heldout_perplexity.json");
  for (const auto& ref : refs["runs"]) {
    const int64_t context = ref["context"];
    const auto out = run_json("--engine " + engine("fp16") + " --context " + std::to_string(context));
    EXPECT_EQ(out["tokens"], ref["tokens"]) << context;
    EXPECT_EQ(out["chunks"], ref["chunks"]) << context;
    EXPECT_EQ(out["scored"], ref["scored"]) << context;
    const double ppl = out["perplexity"], expected = ref["perplexity"];
    EXPECT_NEAR(ppl / expected, 1.0, 2e-4)
        << "context " << context << ": kiln " << ppl << ", transformers " << expected;
  }
}

TEST_F(Perplexity, AgainstABaseEngine) {
  const auto same =
      run_json("--engine " + engine("fp16") + " --kl-divergence-base " + engine("fp16") + " --context 128");
  EXPECT_EQ(same["base"]["kl_max"], 0.0);
  EXPECT_EQ(same["base"]["top1_agreement"], 1.0);
  EXPECT_EQ(same["base"]["perplexity"], same["perplexity"]);
  const auto bf16 =
      run_json("--engine " + engine("bf16") + " --kl-divergence-base " + engine("fp16") + " --context 128");
  const double kl = bf16["base"]["kl_mean"];
  EXPECT_GT(kl, 0.0);
  EXPECT_LT(kl, 1e-2);  // bf16 rounding of the weights, not another model
  EXPECT_GT(bf16["base"]["top1_agreement"].get<double>(), 0.9);
  EXPECT_NEAR(bf16["perplexity"].get<double>() / bf16["base"]["perplexity"].get<double>(), 1.0, 0.05);
}

TEST_F(Perplexity, RefusesWhatItCannotScore) {
  auto r = run_kiln("perplexity --engine " + engine("fp16") + " --text " + text() + " --context 100000");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("--context 100000 exceeds what the engine takes in one forward"));
  const fs::path tiny = dir_->path() / "tiny.txt";
  write_text(tiny, "Hi");
  r = run_kiln("perplexity --engine " + engine("fp16") + " --text " + tiny.string());
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("too short to score"));
  r = run_kiln("perplexity --engine " + engine("fp16") + " --text " + (dir_->path() / "missing.txt").string());
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("missing.txt"));
}

}  // namespace
}  // namespace kiln::test
