#include "runtime/backend_factory.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "runtime/gemm_plan.h"
#ifdef KILN_WITH_CUDA
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_gemm_tuner.h"
#endif

namespace kiln::runtime {
namespace {

#ifdef KILN_WITH_CUDA
std::optional<engine::Target> gpu_target(std::string* why) { return cuda_device_target(why); }
GemmPlan tune_on_gpu(GemmPlan plan, std::stop_token stop) { return cuda::tune_gemm_plan(std::move(plan), stop); }

// The engine's GEMM plan, read leniently: a plan this kiln cannot read leaves
// the choice to cuBLASLt's heuristic rather than refusing the engine.
GemmPlan engine_gemm_plan(const engine::Manifest& manifest) {
  try {
    return GemmPlan::from_kernel_choices(manifest.kernel_choices);
  } catch (const Error& e) {
    log_warn(e.what(), "; cuBLASLt's heuristic chooses the GEMM algorithms");
    GemmPlan plan;
    plan.reason = "the engine's choices are unreadable";
    return plan;
  }
}
#else
std::optional<engine::Target> gpu_target(std::string* why) {
  *why = "this kiln binary was built without the CUDA toolkit";
  return std::nullopt;
}
GemmPlan tune_on_gpu(GemmPlan plan, std::stop_token) { return plan; }  // unreachable: no GPU target without CUDA
#endif

}  // namespace

bool built_with_cuda() {
#ifdef KILN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

engine::Target resolve_target(const std::string& name) {
  if (name == "cpu") return engine::host_cpu_target();
  // cuda:sm_XY names the architecture, for building on a machine without that
  // GPU (the engine's bytes do not depend on it; only where it may run does).
  if (name.starts_with("cuda:")) {
    const std::string arch = name.substr(5);
    const bool valid = arch.size() >= 5 && arch.starts_with("sm_") &&
                       std::all_of(arch.begin() + 3, arch.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!valid) throw_error("--target '", name, "': expected cuda:sm_<major><minor>, e.g. cuda:sm_90");
    return engine::Target{"cuda", arch};
  }
  if (name == "cuda" || name == "auto") {
    std::string why;
    if (auto t = gpu_target(&why)) return *t;
    if (name == "auto") return engine::host_cpu_target();
    throw_error("--target cuda: no CUDA GPU is usable here (", why, "); build on the GPU the engine will run on");
  }
  throw_error("--target '", name, "' is not a target; use cpu, cuda, cuda:sm_XY or auto");
}

engine::Target runtime_target_for(const engine::Target& built) {
  if (built.backend == "cpu") return engine::host_cpu_target();
  if (built.backend == "cuda") {
    std::string why;
    if (auto t = gpu_target(&why)) return *t;
    throw_error("the engine was built for ", built.describe(), ", but this machine cannot run it: ", why);
  }
  throw_error("the engine's target backend '", built.backend, "' is unknown to this kiln");
}

std::unique_ptr<Backend> make_backend(const engine::Manifest& manifest) {
  if (manifest.target.backend == "cpu") return make_cpu_backend();
#ifdef KILN_WITH_CUDA
  if (manifest.target.backend == "cuda")
    return make_cuda_backend(manifest.dtype, manifest.kv_cache_dtype, engine_gemm_plan(manifest));
#endif
  throw_error("no backend here runs engines built for ", manifest.target.describe());
}

nlohmann::json tune_kernel_choices(const engine::Manifest& manifest, bool tune, std::stop_token stop) {
  nlohmann::json choices = nlohmann::json::object();
  if (manifest.target.backend != "cuda") return choices;
  GemmPlan plan = GemmPlan::for_manifest(manifest);
  if (plan.problems.empty()) {
    if (plan.reason.empty()) plan.reason = "every product has at most 8 rows: the gemv kernel runs them";
  } else if (!tune) {
    plan.reason = "--tune off";
  } else {
    std::string why;
    const std::optional<engine::Target> here = gpu_target(&why);
    if (!here) {
      plan.reason = concat("no GPU here to measure on: ", why);
    } else if (*here != manifest.target) {
      plan.reason = concat("built for ", manifest.target.arch, " on a machine whose GPU is ", here->arch);
    } else {
      try {
        plan = tune_on_gpu(std::move(plan), stop);
      } catch (const Error& e) {
        throw_error("measuring the GEMM algorithms failed (--tune off skips it): ", e.what());
      }
    }
  }
  if (!plan.tuned) log_info("GEMM algorithms not measured (", plan.reason, "); cuBLASLt's heuristic will choose them");
  choices[kGemmChoicesKey] = plan.to_json();
  return choices;
}

}  // namespace kiln::runtime
