#include <cuda_runtime_api.h>

#include "core/error.h"
#include "runtime/cuda/cuda_backend.h"

namespace kiln::runtime {

std::optional<engine::Target> cuda_device_target(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why) *why = status != cudaSuccess ? cudaGetErrorString(status) : "no CUDA device";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return std::nullopt;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    if (why) *why = "cudaGetDeviceProperties failed";
    return std::nullopt;
  }
  return engine::Target{"cuda", concat("sm_", prop.major, prop.minor)};
}

std::string cuda_device_description() {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "no CUDA device";
  return concat(prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
                prop.totalGlobalMem >> 20, " MiB)");
}

}  // namespace kiln::runtime
