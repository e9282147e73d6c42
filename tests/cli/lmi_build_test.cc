// kiln build driven by serving.properties with the LMI partition script's
// spellings: the same file later serves the engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

TEST(LmiBuild, PropertiesDirAndPartitionScriptSpellings) {
  TempDir dir;
  const std::string demo = std::string(KILN_SOURCE_DIR) + "/demo/model";
  write_text(dir.path() / "serving.properties", "engine=MPI\noption.model_id=" + demo +
                                                    "\noption.tensor_parallel_degree=2\noption.dtype=fp32\n"
                                                    "option.max_rolling_batch_size=16\n");
  const auto engine = dir.path() / "repo";
  auto r = run_kiln("build --properties_dir " + dir.path().string() + " --trt_llm_model_repo " + engine.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("engine=MPI is ignored"));
  r = run_kiln("inspect " + engine.string());
  EXPECT_THAT(r.output, HasSubstr("tensor par.   2"));
  EXPECT_THAT(r.output, HasSubstr("dtype         fp32"));
  EXPECT_THAT(r.output, HasSubstr("batch 16"));
  // The two ranks together still compute what PyTorch computed.
  r = run_kiln("verify --engine " + engine.string() + " --reference " + demo);
  EXPECT_EQ(r.status, 0) << r.output;
  // A flag beside the file wins over it.
  r = run_kiln("build --properties-dir " + dir.path().string() + " --tensor_parallel_degree 1 --model-repo " +
               (dir.path() / "tp1").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(run_kiln("inspect " + (dir.path() / "tp1").string()).output, HasSubstr("tensor par.   1"));
}

TEST(LmiBuild, PropertiesWithoutModelIdAreRefused) {
  TempDir dir;
  write_text(dir.path() / "serving.properties", "option.dtype=fp16\n");
  const auto r =
      run_kiln("build --properties-dir " + dir.path().string() + " --model-repo " + (dir.path() / "out").string());
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("option.model_id is not set"));
}

}  // namespace
}  // namespace kiln::test
