// The CUDA backend: weights, activations and the paged KV cache in device
// memory, kernels on one stream, decode products by gemv and larger ones by
// cuBLAS tensor-core GEMMs. The host synchronises only where a result is read
// back (logits, MoE router scores).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "engine/target.h"
#include "runtime/backend.h"
#include "runtime/gemm_plan.h"

namespace kiln::runtime {

// `dtype`: the engine's; `kv_dtype`: the KV cache's element type (dtype, or
// f8e4m3); `gemm_plan`: the engine's measured GEMM algorithms
// (kernel_choices), possibly untuned.
std::unique_ptr<Backend> make_cuda_backend(DType dtype, DType kv_dtype, GemmPlan gemm_plan = {});

// Device 0 as a target ("cuda", "sm_90"), or nullopt when there is no usable
// GPU; `why` then says what the driver answered.
std::optional<engine::Target> cuda_device_target(std::string* why = nullptr);
std::string cuda_device_description();

}  // namespace kiln::runtime
