#include "runtime/backend_factory.h"

#include <algorithm>

#include "core/error.h"
#ifdef KILN_WITH_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

namespace kiln::runtime {
namespace {

#ifdef KILN_WITH_CUDA
std::optional<engine::Target> gpu_target(std::string* why) { return cuda_device_target(why); }
#else
std::optional<engine::Target> gpu_target(std::string* why) {
  *why = "this kiln binary was built without the CUDA toolkit";
  return std::nullopt;
}
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
  if (manifest.target.backend == "cuda") return make_cuda_backend(manifest.dtype);
#endif
  throw_error("no backend here runs engines built for ", manifest.target.describe());
}

}  // namespace kiln::runtime
