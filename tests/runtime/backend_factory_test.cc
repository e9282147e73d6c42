// Which backend and target an engine gets: the CPU always; CUDA only with a
// GPU, and an engine for another target is refused naming it.
#include "runtime/backend_factory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "runtime/gemm_plan.h"
#include "support/error_of.h"

namespace kiln::runtime {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

using test::error_of;

TEST(BackendFactory, CpuTargetIsThisMachine) {
  EXPECT_EQ(resolve_target("cpu"), engine::host_cpu_target());
  EXPECT_EQ(runtime_target_for({"cpu", "whatever"}), engine::host_cpu_target());
  engine::Manifest m;
  m.target = engine::host_cpu_target();
  EXPECT_EQ(make_backend(m)->name(), "cpu");
}

TEST(BackendFactory, AutoFallsBackToTheCpuWithoutAGpu) {
  const engine::Target t = resolve_target("auto");
  EXPECT_THAT(t.backend, AnyOf("cpu", "cuda"));
  if (t.backend == "cuda") {
    EXPECT_THAT(t.arch, HasSubstr("sm_"));
  }
}

TEST(BackendFactory, UnknownTargetsAreRefusedByName) {
  EXPECT_THAT(error_of([] { resolve_target("tpu"); }), HasSubstr("--target 'tpu' is not a target"));
  EXPECT_THAT(error_of([] { runtime_target_for({"tpu", "v5"}); }), HasSubstr("'tpu' is unknown"));
}

TEST(BackendFactory, NamedCudaArchitectureNeedsNoGpu) {
  EXPECT_EQ(resolve_target("cuda:sm_90"), (engine::Target{"cuda", "sm_90"}));
  EXPECT_EQ(resolve_target("cuda:sm_80"), (engine::Target{"cuda", "sm_80"}));
  EXPECT_THAT(error_of([] { resolve_target("cuda:hopper"); }), HasSubstr("expected cuda:sm_<major><minor>"));
  EXPECT_THAT(error_of([] { resolve_target("cuda:sm_"); }), HasSubstr("expected cuda:sm_<major><minor>"));
}

TEST(BackendFactory, CudaNeedsAGpu) {
  if (resolve_target("auto").backend == "cuda") GTEST_SKIP() << "this machine has a GPU";
  EXPECT_THAT(error_of([] { resolve_target("cuda"); }), HasSubstr("--target cuda: no CUDA GPU is usable here"));
  EXPECT_THAT(error_of([] {
                runtime_target_for({"cuda", "sm_90"});
              }),
              HasSubstr("built for cuda sm_90, but this machine cannot run it"));
}

engine::Manifest fp16_manifest(const engine::Target& target) {
  engine::Manifest m;
  m.target = target;
  m.dtype = DType::f16;
  m.spec.vocab_size = 300;
  m.spec.hidden_size = 64;
  m.spec.num_heads = 4;
  m.spec.num_kv_heads = 4;
  m.spec.head_dim = 16;
  m.spec.intermediate_size = 128;
  m.limits.max_batch_size = 16;
  m.limits.max_num_tokens = 256;
  return m;
}

TEST(BackendFactory, CpuEnginesHaveNoKernelChoices) {
  EXPECT_EQ(tune_kernel_choices(fp16_manifest(engine::host_cpu_target()), true), nlohmann::json::object());
}

TEST(BackendFactory, UntunedCudaEnginesRecordTheirGemmsAndWhy) {
  const nlohmann::json off = tune_kernel_choices(fp16_manifest({"cuda", "sm_90"}), false);
  const GemmPlan plan = GemmPlan::from_kernel_choices(off);
  EXPECT_FALSE(plan.tuned);
  EXPECT_EQ(plan.reason, "--tune off");
  EXPECT_EQ(plan.arch, "sm_90");
  EXPECT_EQ(plan.problems.size(), 5u);
  if (resolve_target("auto").backend == "cuda") return;  // a GPU here could measure them
  const GemmPlan no_gpu = GemmPlan::from_kernel_choices(tune_kernel_choices(fp16_manifest({"cuda", "sm_90"}), true));
  EXPECT_FALSE(no_gpu.tuned);
  EXPECT_THAT(no_gpu.reason, HasSubstr("no GPU here to measure on"));
}

}  // namespace
}  // namespace kiln::runtime
