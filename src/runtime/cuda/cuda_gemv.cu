// Decode's matrix products: a few activation rows times a weight matrix read
// once from device memory. One warp per output feature; each lane streams 16
// bytes of the weight row per step (8 fp16/bf16 or 4 fp32 values), with the
// activation rows read through the L1 cache, fp32 accumulation, a warp
// reduction at the end. Bandwidth-bound by design: the weights are the bytes.
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdlib>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kWarps = 8;

// Eight weights from one 16-byte load.
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&f)[8]) {
  unpack8(__ldg(reinterpret_cast<const uint4*>(p)), p, f);
}

// Eight E4M3 weights from one 8-byte load (quantized engines: the scale is applied per feature at the end).
__device__ __forceinline__ void load8(const __nv_fp8_e4m3* p, float (&f)[8]) {
  const uint2 raw = __ldg(reinterpret_cast<const uint2*>(p));
  const uint32_t words[2] = {raw.x, raw.y};
  unpack_e4m3<2>(words, f);
}

__device__ __forceinline__ void load8(const float* p, float (&f)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p)), b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

// One 8-element chunk of every row: acc[m] += x[m, k..k+8) . w. With NORM the
// rows are RMS-normalized on the fly: x is scaled by the norm's weight g here,
// and ss[m] collects sum(x^2) for the row scale applied at the end (every warp
// reads whole rows, so each has the exact sum).
template <int M, bool NORM>
__device__ __forceinline__ void accumulate8(const float* x, int64_t K, int64_t k, const float (&wf)[8], const float* g,
                                            float (&acc)[M], float (&ss)[M]) {
  float gf[8];
  if constexpr (NORM) load8(g + k, gf);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float xf[8];
    load8(x + m * K + k, xf);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if constexpr (NORM) {
        ss[m] = fmaf(xf[i], xf[i], ss[m]);
        xf[i] *= gf[i];
      }
      acc[m] = fmaf(xf[i], wf[i], acc[m]);
    }
  }
}

// K a multiple of 8 (16-byte aligned weight rows and activation rows).
// SPLIT warps share each output feature, taking every SPLIT-th 256-element
// chunk of its row: short rows (few output features) then get more warps, so
// more loads are in flight and each warp's run is shorter; shared memory sums
// the warps' parts.
template <typename T, int M, bool NORM, int SPLIT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_vec_kernel(const float* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                    float* __restrict__ out, int64_t K, int64_t N, bool accumulate, const float* __restrict__ g,
                    float eps, const float* __restrict__ run_if, const float* __restrict__ scale) {
  if (run_if && *run_if == 0.f) return;  // an expert no row uses
  static_assert(kWarps % SPLIT == 0, "a block holds whole features");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, part = warp % SPLIT;
  const int64_t n = blockIdx.x * int64_t{kWarps / SPLIT} + warp / SPLIT;
  if (SPLIT == 1 && n >= N) return;
  const T* wr = w + min(n, N - 1) * K;
  float acc[M], ss[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = ss[m] = 0.f;
  // kDepth weight loads issued before any is used: enough bytes in flight to
  // cover device-memory latency with few warps per SM. An E4M3 load is 8
  // bytes, half a 16-bit one, so it takes twice the depth for the same bytes.
  constexpr int kDepth = sizeof(T) == 1 ? 8 : 4;
  constexpr int64_t kStep = 32 * 8 * SPLIT;
  int64_t k = lane * 8 + part * 32 * 8;
  for (; k + (kDepth - 1) * kStep < K; k += kDepth * kStep) {
    float wf[kDepth][8];
#pragma unroll
    for (int u = 0; u < kDepth; ++u) load8(wr + k + u * kStep, wf[u]);
#pragma unroll
    for (int u = 0; u < kDepth; ++u) accumulate8<M, NORM>(x, K, k + u * kStep, wf[u], g, acc, ss);
  }
  // The last (fewer than kDepth) chunks of the row, their loads in flight together.
  if (k < K) {
    float wf[kDepth - 1][8];
#pragma unroll
    for (int u = 0; u < kDepth - 1; ++u) {
      if (k + u * kStep < K) load8(wr + k + u * kStep, wf[u]);
    }
#pragma unroll
    for (int u = 0; u < kDepth - 1; ++u) {
      if (k + u * kStep < K) accumulate8<M, NORM>(x, K, k + u * kStep, wf[u], g, acc, ss);
    }
  }
  if constexpr (SPLIT > 1) {
    __shared__ float parts[kWarps][M][2];
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float a = warp_sum(acc[m]), q = NORM ? warp_sum(ss[m]) : 0.f;
      if (lane == 0) parts[warp][m][0] = a, parts[warp][m][1] = q;
    }
    __syncthreads();
    if (part != 0 || n >= N) return;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      acc[m] = ss[m] = 0.f;
      for (int p = 0; p < SPLIT; ++p) acc[m] += parts[warp + p][m][0], ss[m] += parts[warp + p][m][1];
    }
  } else {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      acc[m] = warp_sum(acc[m]);
      if constexpr (NORM) ss[m] = warp_sum(ss[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v = acc[m];
    if constexpr (NORM) v *= rsqrtf(ss[m] / static_cast<float>(K) + eps);
    if (scale) v *= scale[n];  // a quantized weight's per-feature scale
    if (lane == 0) out[m * N + n] = v + (bias ? bias[n] : 0.f) + (accumulate ? out[m * N + n] : 0.f);
  }
}

// Any K: one element per lane per step.
template <typename T>
__global__ void gemv_scalar_kernel(const float* x, int64_t rows, const T* w, const float* bias, float* out, int64_t K,
                                   int64_t N, bool accumulate, const float* run_if, const float* scale) {
  if (run_if && *run_if == 0.f) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t{kWarps} + warp;
  if (n >= N) return;
  for (int64_t m = 0; m < rows; ++m) {
    float acc = 0.f;
    for (int64_t k = lane; k < K; k += 32) acc = fmaf(x[m * K + k], to_float(w[n * K + k]), acc);
    acc = warp_sum(acc);
    if (scale) acc *= scale[n];
    if (lane == 0) out[m * N + n] = acc + (bias ? bias[n] : 0.f) + (accumulate ? out[m * N + n] : 0.f);
  }
}

// KILN_CUDA_GEMV_SPLIT=0 keeps one warp per output feature (for comparison).
bool gemv_split_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_CUDA_GEMV_SPLIT");
    return !(v && v[0] == '0');
  }();
  return on;
}

template <typename T, int M>
void launch_vec(const float* x, const T* w, const float* bias, float* out, int64_t K, int64_t N, bool accumulate,
                const float* g, float eps, const float* run_if, const float* scale, cudaStream_t stream) {
  // Fewer output features than about two warps per SM slot's worth: split
  // each over two warps (the out and down products of a 7B model).
  if (N < 8192 && gemv_split_enabled()) {
    constexpr int kFeatures = kWarps / 2;
    if (g) {
      gemv_vec_kernel<T, M, true, 2><<<blocks_for(N, kFeatures), kWarps * 32, 0, stream>>>(
          x, w, bias, out, K, N, accumulate, g, eps, run_if, scale);
    } else {
      gemv_vec_kernel<T, M, false, 2><<<blocks_for(N, kFeatures), kWarps * 32, 0, stream>>>(
          x, w, bias, out, K, N, accumulate, g, eps, run_if, scale);
    }
    return;
  }
  if (g) {
    gemv_vec_kernel<T, M, true, 1>
        <<<blocks_for(N, kWarps), kWarps * 32, 0, stream>>>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale);
  } else {
    gemv_vec_kernel<T, M, false, 1>
        <<<blocks_for(N, kWarps), kWarps * 32, 0, stream>>>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale);
  }
}

template <typename T>
void launch_rows(int64_t rows, const float* x, const T* w, const float* bias, float* out, int64_t K, int64_t N,
                 bool accumulate, const float* g, float eps, const float* run_if, const float* scale,
                 cudaStream_t stream) {
  switch (rows) {
    case 1: return launch_vec<T, 1>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 2: return launch_vec<T, 2>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 3: return launch_vec<T, 3>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 4: return launch_vec<T, 4>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 5: return launch_vec<T, 5>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 6: return launch_vec<T, 6>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 7: return launch_vec<T, 7>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    case 8: return launch_vec<T, 8>(x, w, bias, out, K, N, accumulate, g, eps, run_if, scale, stream);
    default: throw_error("internal: gemv takes 1 to ", kGemvMaxRows, " rows, not ", rows);
  }
}

}  // namespace

void gemv(const float* x, int64_t rows, const void* w, DType dtype, int64_t in, int64_t out_features, const float* bias,
          float* out, bool accumulate, cudaStream_t stream, const float* run_if, const float* scale) {
  dispatch_stored_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const T* wt = static_cast<const T*>(w);
    if (in % 8 == 0) {
      launch_rows<T>(rows, x, wt, bias, out, in, out_features, accumulate, nullptr, 0.f, run_if, scale, stream);
    } else {
      gemv_scalar_kernel<T><<<blocks_for(out_features, kWarps), kWarps * 32, 0, stream>>>(
          x, rows, wt, bias, out, in, out_features, accumulate, run_if, scale);
    }
  });
  check_launch("gemv");
}

bool rms_norm_gemv_supported(int64_t rows, int64_t in) { return rows <= kGemvMaxRows && in % 8 == 0; }

void rms_norm_gemv(const float* x, int64_t rows, const float* norm_weight, float eps, const void* w, DType dtype,
                   int64_t in, int64_t out_features, const float* bias, float* out, cudaStream_t stream,
                   const float* scale) {
  if (!rms_norm_gemv_supported(rows, in)) throw_error("internal: rms_norm_gemv needs rows <= 8 and in % 8 == 0");
  dispatch_stored_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    launch_rows<T>(rows, x, static_cast<const T*>(w), bias, out, in, out_features, false, norm_weight, eps, nullptr,
                   scale, stream);
  });
  check_launch("rms_norm_gemv");
}

}  // namespace kiln::runtime::cuda
