// Every CUDA and cuBLAS call is checked: a failure becomes a kiln::Error that
// names the call and the driver's message, so a kernel fault or an
// out-of-memory fails the step (and the requests in it) instead of going
// unnoticed or hanging the server.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "core/error.h"

namespace kiln::runtime::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw_error("CUDA error in ", what, ": ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
  }
}

inline void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw_error("cuBLAS error in ", what, ": ", cublasGetStatusName(status), " (", cublasGetStatusString(status), ")");
  }
}

// After a kernel launch: launch-configuration errors now, faults at the next sync.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace kiln::runtime::cuda

#define KILN_CUDA_CHECK(call) ::kiln::runtime::cuda::check((call), #call)
