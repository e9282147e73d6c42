// kiln verify's judgement of 16-bit engines (docs/verification.md): by the KL
// divergence of their next-token distributions from HuggingFace's float64
// reference and by top-1 agreement at decisive positions, with bounds set
// against HuggingFace's own bf16 and fp16 error. A bf16 engine of the llama
// fixture (weights rounded from fp32, on the CPU) passes; the same engine with
// a rotary base 5% or 10% off (a real bug whose logit errors are of bf16's
// size), or judged against another model, fails and exits 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class VerifyCriterion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = run_kiln("build -q --dtype bf16 --model " + fixture("llama") + " --output " + engine().string());
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path engine() { return dir_->path() / "llama-bf16"; }
  static fs::path with_rope_theta(double theta) {
    const fs::path copy = dir_->path() / ("theta-" + std::to_string(static_cast<int>(theta)));
    fs::copy(engine(), copy, fs::copy_options::recursive);
    auto j = read_json(copy / "engine.json");
    j["model"]["rope"]["theta"] = theta;
    write_text(copy / "engine.json", j.dump());
    return copy;
  }
  static inline TempDir* dir_ = nullptr;
};

TEST_F(VerifyCriterion, Bf16EngineIsJudgedByItsDistributions) {
  const auto r = run_kiln("verify --engine " + engine().string() + " --reference " + fixture("llama"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("all positions (67): KL mean"));
  EXPECT_THAT(r.output, HasSubstr("top-1 agreement 34/34 where the reference margin > 0.254"));
  EXPECT_THAT(r.output, HasSubstr("PASS: 3 cases, bf16 engine, KL mean <= 0.001006, KL p99 <= 0.006036"));
}

TEST_F(VerifyCriterion, ARotaryBaseSlightlyOffFails) {
  for (const double theta : {10500.0, 11000.0}) {
    const auto r = run_kiln("verify --engine " + with_rope_theta(theta).string() + " --reference " + fixture("llama"));
    EXPECT_EQ(r.status, 1) << theta << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("the KL divergence exceeds its bound")) << theta;
    EXPECT_THAT(r.output, HasSubstr("FAIL: 3 cases, bf16 engine"));
  }
}

TEST_F(VerifyCriterion, AnotherModelsReferenceFails) {
  const auto r = run_kiln("verify --engine " + engine().string() + " --reference " + fixture("mistral"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a decisive position's top-1 token differs from the reference's"));
  EXPECT_THAT(r.output, HasSubstr("FAIL"));
}

TEST_F(VerifyCriterion, AnExplicitToleranceJudgesByMaxLogitError) {
  // The engine's max |logit error| is about 0.12: within 0.2, not within 0.01.
  auto r = run_kiln("verify --engine " + engine().string() + " --reference " + fixture("llama") + " --tolerance 0.2");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PASS: 3 cases, bf16 engine, tolerance 0.2"));
  r = run_kiln("verify --engine " + engine().string() + " --reference " + fixture("llama") + " --tolerance 0.01");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("KL mean <=")));
}

}  // namespace
}  // namespace kiln::test
