// E4M3 conversions around the FP8 products: activations quantized per row
// (dynamic, no calibration) before the E4M3 products (cuBLASLt's GEMM, the
// tensor-core gemv), alone or fused into the norm or the gated activation
// that produces them; the scales applied after an unscaled GEMM; and weights
// dequantized for the 16-bit products where no E4M3 GEMM runs.
#include <cuda_fp8.h>

#include <algorithm>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr float kE4m3Max = 448.f;
// Threads per row: decode's few rows take the most, so a row's passes are a
// few loads per thread, not a latency-bound loop (14336 values: 20 us at 256).
unsigned quantize_threads(int64_t rows) { return rows < 128 ? 1024 : 256; }

__device__ __forceinline__ uint32_t e4m3x4(float4 v, float scale) {
  const __nv_fp8x2_storage_t lo =
      __nv_cvt_float2_to_fp8x2(make_float2(__fdiv_rn(v.x, scale), __fdiv_rn(v.y, scale)), __NV_SATFINITE, __NV_E4M3);
  const __nv_fp8x2_storage_t hi =
      __nv_cvt_float2_to_fp8x2(make_float2(__fdiv_rn(v.z, scale), __fdiv_rn(v.w, scale)), __NV_SATFINITE, __NV_E4M3);
  return uint32_t{lo} | (uint32_t{hi} << 16);
}

// One row (this block's) quantized: value4(i) gives columns 4i..4i+3 (cols %
// 4 == 0), called twice per group, once for the row's largest magnitude, which
// gives its scale, and once to divide by it and round to E4M3 (nearest even,
// saturating: the division cannot exceed 448 but rounding may reach it). A
// producer that computes its values (a norm, an activation) thus writes its
// output straight in E4M3, with no fp32 pass between it and the product.
template <typename Value4>
__device__ __forceinline__ void quantize_row4(Value4 value4, int64_t cols, __nv_fp8_storage_t* out, float* scale_out,
                                              float* shared32) {
  float amax = 0.f;
  for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) {
    const float4 v = value4(i);
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  }
  amax = block_max(amax, shared32);
  // A row of zeros keeps scale 1 (any scale gives zeros).
  const float scale = amax > 0.f ? __fdiv_rn(amax, kE4m3Max) : 1.f;
  if (threadIdx.x == 0) *scale_out = scale;
  for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(out)[i] = e4m3x4(value4(i), scale);
  }
}

// One block per row. Rows whose length is not a multiple of 4 go element by element.
__global__ void quantize_rows_e4m3_kernel(const float* __restrict__ x, int64_t cols, __nv_fp8_storage_t* __restrict__ q,
                                          float* __restrict__ scales) {
  __shared__ float shared[32];
  const float* row = x + blockIdx.x * cols;
  __nv_fp8_storage_t* out = q + blockIdx.x * cols;
  if (cols % 4 == 0) {
    const auto* row4 = reinterpret_cast<const float4*>(row);
    quantize_row4([&](int64_t i) { return row4[i]; }, cols, out, scales + blockIdx.x, shared);
    return;
  }
  float amax = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) amax = fmaxf(amax, fabsf(row[c]));
  amax = block_max(amax, shared);
  const float scale = amax > 0.f ? __fdiv_rn(amax, kE4m3Max) : 1.f;
  if (threadIdx.x == 0) scales[blockIdx.x] = scale;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    out[c] = __nv_cvt_float_to_fp8(__fdiv_rn(row[c], scale), __NV_SATFINITE, __NV_E4M3);
  }
}

// RMSNorm's output (as rms_norm computes it: x * rsqrt(mean(x^2) + eps) * w)
// quantized per row: the norm before an FP8 projection writes 1 byte a value, not 4.
__global__ void rms_norm_quantize_e4m3_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps,
                                              int64_t cols, __nv_fp8_storage_t* __restrict__ q,
                                              float* __restrict__ scales) {
  __shared__ float shared[32];
  const auto* row4 = reinterpret_cast<const float4*>(x + blockIdx.x * cols);
  const auto* w4 = reinterpret_cast<const float4*>(w);
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < cols / 4; i += blockDim.x) {
    const float4 v = row4[i];
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float r = rsqrtf(block_sum(ss, shared) / static_cast<float>(cols) + eps);
  quantize_row4(
      [&](int64_t i) {
        const float4 v = row4[i], g = w4[i];
        return make_float4(v.x * r * g.x, v.y * r * g.y, v.z * r * g.z, v.w * r * g.w);
      },
      cols, q + blockIdx.x * cols, scales + blockIdx.x, shared);
}

// act(gate) * up of each row (gate_up holds [gate | up]) quantized per row:
// the gated activation before an FP8 down projection, in one pass and 1 byte a value.
// With x_scale and w_scale, gate_up is an unscaled E4M3 product and each value
// is first scaled as apply_e4m3_scales would (raw x x_scale[row] x w_scale[col]).
__global__ void gated_activation_quantize_e4m3_kernel(Activation act, const float* __restrict__ gate_up, int64_t inner,
                                                      __nv_fp8_storage_t* __restrict__ q, float* __restrict__ scales,
                                                      const float* __restrict__ x_scale,
                                                      const float* __restrict__ w_scale) {
  __shared__ float shared[32];
  const auto* gate4 = reinterpret_cast<const float4*>(gate_up + blockIdx.x * 2 * inner);
  const auto* up4 = gate4 + inner / 4;
  const bool scaled = x_scale != nullptr;
  const float xs = scaled ? x_scale[blockIdx.x] : 1.f;
  const auto* gs4 = reinterpret_cast<const float4*>(w_scale);
  const auto* us4 = scaled ? gs4 + inner / 4 : nullptr;
  quantize_row4(
      [&](int64_t i) {
        float4 g = gate4[i], u = up4[i];
        if (scaled) {
          const float4 a = gs4[i], b = us4[i];
          g = make_float4(g.x * xs * a.x, g.y * xs * a.y, g.z * xs * a.z, g.w * xs * a.w);
          u = make_float4(u.x * xs * b.x, u.y * xs * b.y, u.z * xs * b.z, u.w * xs * b.w);
        }
        return make_float4(activate(act, g.x) * u.x, activate(act, g.y) * u.y, activate(act, g.z) * u.z,
                           activate(act, g.w) * u.w);
      },
      inner, q + blockIdx.x * inner, scales + blockIdx.x, shared);
}

template <typename T>
__global__ void dequantize_e4m3_kernel(const __nv_fp8_e4m3* __restrict__ w, const float* __restrict__ scale,
                                       int64_t cols, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = from_float<T>(static_cast<float>(w[i]) * scale[i / cols]);
  }
}

// out[r][c] = raw[r][c] x x_scale[r] x w_scale[c] (+ out[r][c] with
// accumulate): the scales an unscaled E4M3 product leaves out. raw may be out.
// Four columns a thread where the rows allow it (every real model's).
__global__ void apply_e4m3_scales_kernel(const float* raw, const float* __restrict__ x_scale,
                                         const float* __restrict__ w_scale, int64_t rows, int64_t cols, float* out,
                                         bool accumulate) {
  const int64_t groups = cols / 4;
  const int64_t total = cols % 4 == 0 ? rows * groups : rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    if (cols % 4 == 0) {
      const int64_t r = i / groups, c = (i % groups) * 4;
      const float xs = x_scale[r];
      const float4 v = *reinterpret_cast<const float4*>(raw + r * cols + c);
      const float4 w = *reinterpret_cast<const float4*>(w_scale + c);
      float4 o = make_float4(v.x * xs * w.x, v.y * xs * w.y, v.z * xs * w.z, v.w * xs * w.w);
      float4* dst = reinterpret_cast<float4*>(out + r * cols + c);
      if (accumulate) {
        const float4 a = *dst;
        o = make_float4(a.x + o.x, a.y + o.y, a.z + o.z, a.w + o.w);
      }
      *dst = o;
    } else {
      const int64_t r = i / cols, c = i % cols;
      const float o = raw[i] * x_scale[r] * w_scale[c];
      out[i] = accumulate ? out[i] + o : o;
    }
  }
}

}  // namespace

void apply_e4m3_scales(const float* raw, const float* x_scale, const float* w_scale, int64_t rows, int64_t cols,
                       float* out, bool accumulate, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t total = cols % 4 == 0 ? rows * (cols / 4) : rows * cols;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 65536));
  apply_e4m3_scales_kernel<<<blocks, 256, 0, stream>>>(raw, x_scale, w_scale, rows, cols, out, accumulate);
  check_launch("apply_e4m3_scales");
}

void quantize_rows_e4m3(const float* x, int64_t rows, int64_t cols, void* q, float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(q) % 4 == 0;
  if (!aligned && cols % 4 == 0) throw_error("internal: quantize_rows_e4m3 takes 16-byte aligned rows");
  quantize_rows_e4m3_kernel<<<static_cast<unsigned>(rows), quantize_threads(rows), 0, stream>>>(
      x, cols, static_cast<__nv_fp8_storage_t*>(q), scales);
  check_launch("quantize_rows_e4m3");
}

bool fused_quantize_supported(int64_t cols) { return cols % 4 == 0; }

void rms_norm_quantize_e4m3(const float* x, const float* w, float eps, int64_t rows, int64_t cols, void* q,
                            float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  if (!fused_quantize_supported(cols)) throw_error("internal: rms_norm_quantize_e4m3 takes rows of 4k values");
  rms_norm_quantize_e4m3_kernel<<<static_cast<unsigned>(rows), quantize_threads(rows), 0, stream>>>(
      x, w, eps, cols, static_cast<__nv_fp8_storage_t*>(q), scales);
  check_launch("rms_norm_quantize_e4m3");
}

void gated_activation_quantize_e4m3(Activation act, const float* gate_up, int64_t rows, int64_t inner, void* q,
                                    float* scales, cudaStream_t stream, const float* x_scale, const float* w_scale) {
  if (rows <= 0) return;
  if (!fused_quantize_supported(inner)) throw_error("internal: gated_activation_quantize_e4m3 takes rows of 4k values");
  gated_activation_quantize_e4m3_kernel<<<static_cast<unsigned>(rows), quantize_threads(rows), 0, stream>>>(
      act, gate_up, inner, static_cast<__nv_fp8_storage_t*>(q), scales, x_scale, w_scale);
  check_launch("gated_activation_quantize_e4m3");
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
