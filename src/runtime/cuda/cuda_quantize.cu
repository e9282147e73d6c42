// E4M3 conversions around the FP8 products: activations quantized per row
// (dynamic, no calibration) before cuBLASLt's E4M3 GEMM, and weights
// dequantized for the 16-bit products where no E4M3 GEMM runs.
#include <cuda_fp8.h>

#include <algorithm>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr float kE4m3Max = 448.f;
constexpr int kQuantizeThreads = 256;

// One block per row: the row's largest magnitude gives its scale, then every
// value is divided by it and rounded to E4M3 (nearest even, saturating: the
// division cannot exceed 448 but rounding may reach it). Two reads of the
// row; the second hits L1/L2.
__global__ void quantize_rows_e4m3_kernel(const float* __restrict__ x, int64_t cols, __nv_fp8_storage_t* __restrict__ q,
                                          float* __restrict__ scales) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * cols;
  __nv_fp8_storage_t* out = q + blockIdx.x * cols;
  float amax = 0.f;
  const bool vector = cols % 4 == 0;
  if (vector) {
    for (int64_t c = threadIdx.x * 4; c < cols; c += int64_t{blockDim.x} * 4) {
      const float4 v = *reinterpret_cast<const float4*>(row + c);
      amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) amax = fmaxf(amax, fabsf(row[c]));
  }
  amax = warp_max(amax);
  __syncthreads();
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = amax;
  __syncthreads();
  // Every warp reduces the per-warp maxima, so every thread holds the row's.
  const unsigned lane = threadIdx.x % 32;
  amax = warp_max(lane < blockDim.x / 32 ? shared[lane] : 0.f);
  // A row of zeros keeps scale 1 (any scale gives zeros).
  const float scale = amax > 0.f ? __fdiv_rn(amax, kE4m3Max) : 1.f;
  if (threadIdx.x == 0) scales[blockIdx.x] = scale;
  if (vector) {
    for (int64_t c = threadIdx.x * 4; c < cols; c += int64_t{blockDim.x} * 4) {
      const float4 v = *reinterpret_cast<const float4*>(row + c);
      const __nv_fp8x2_storage_t lo = __nv_cvt_float2_to_fp8x2(
          make_float2(__fdiv_rn(v.x, scale), __fdiv_rn(v.y, scale)), __NV_SATFINITE, __NV_E4M3);
      const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(
          make_float2(__fdiv_rn(v.z, scale), __fdiv_rn(v.w, scale)), __NV_SATFINITE, __NV_E4M3);
      *reinterpret_cast<uint32_t*>(out + c) = uint32_t{lo} | (uint32_t{hi} << 16);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      out[c] = __nv_cvt_float_to_fp8(__fdiv_rn(row[c], scale), __NV_SATFINITE, __NV_E4M3);
    }
  }
}

template <typename T>
__global__ void dequantize_e4m3_kernel(const __nv_fp8_e4m3* __restrict__ w, const float* __restrict__ scale,
                                       int64_t cols, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = from_float<T>(static_cast<float>(w[i]) * scale[i / cols]);
  }
}

}  // namespace

void quantize_rows_e4m3(const float* x, int64_t rows, int64_t cols, void* q, float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(q) % 4 == 0;
  if (!aligned && cols % 4 == 0) throw_error("internal: quantize_rows_e4m3 takes 16-byte aligned rows");
  quantize_rows_e4m3_kernel<<<static_cast<unsigned>(rows), kQuantizeThreads, 0, stream>>>(
      x, cols, static_cast<__nv_fp8_storage_t*>(q), scales);
  check_launch("quantize_rows_e4m3");
}

void dequantize_e4m3(const void* w, const float* scale, int64_t rows, int64_t cols, DType dtype, void* out,
                     cudaStream_t stream) {
  const int64_t n = rows * cols;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 65536));
  const auto* q = static_cast<const __nv_fp8_e4m3*>(w);
  if (dtype == DType::bf16) {
    dequantize_e4m3_kernel<<<blocks, 256, 0, stream>>>(q, scale, cols, n, static_cast<__nv_bfloat16*>(out));
  } else if (dtype == DType::f16) {
    dequantize_e4m3_kernel<<<blocks, 256, 0, stream>>>(q, scale, cols, n, static_cast<__half*>(out));
  } else {
    throw_error("internal: E4M3 weights dequantize to fp16 or bf16, not ", dtype_name(dtype));
  }
  check_launch("dequantize_e4m3");
}

}  // namespace kiln::runtime::cuda
