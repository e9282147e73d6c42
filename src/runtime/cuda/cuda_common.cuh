// Device helpers shared by the kernels: element loads of every stored dtype
// as fp32, warp and block reductions, grid sizing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/model_spec.h"
#include "runtime/cuda/cuda_check.h"

namespace kiln::runtime::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// E4M3 (FP8 weights and KV caches): exact in fp16, so through it.
__device__ __forceinline__ float to_float(__nv_fp8_e4m3 v) { return static_cast<float>(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Round to nearest even, saturating at +-448 (E4M3 has no infinity).
template <>
__device__ __forceinline__ __nv_fp8_e4m3 from_float<__nv_fp8_e4m3>(float v) {
  __nv_fp8_e4m3 r;
  r.__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  return r;
}

// Two E4M3 values (the low 16 bits of `bits`) as fp32.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t bits) {
  const auto pair = static_cast<__nv_fp8x2_storage_t>(bits & 0xffffu);
  return __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
}

// 4 * words E4M3 values (packed in 32-bit words) as fp32.
template <int W>
__device__ __forceinline__ void unpack_e4m3(const uint32_t* words, float* f) {
#pragma unroll
  for (int i = 0; i < 2 * W; ++i) {
    const float2 t = e4m3x2_to_float2(words[i / 2] >> (16 * (i % 2)));
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// Eight 16-bit values (one 16-byte load) as fp32; the pointer only picks the type.
__device__ __forceinline__ void unpack8(const uint4& raw, const __half*, float* f) {
  const auto* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ void unpack8(const uint4& raw, const __nv_bfloat16*, float* f) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// The MLP activations, in fp32.
__device__ __forceinline__ float activate(Activation act, float x) {
  switch (act) {
    case Activation::silu: return x / (1.f + expf(-x));
    case Activation::gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case Activation::gelu_tanh: return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  }
  return x;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// A warp reduction (warp_sum, warp_max) over the block (blockDim.x a multiple
// of 32, at most 1024); every thread gets the result. `identity` fills the
// lanes past the block's warps.
template <float (*WarpReduce)(float)>
__device__ __forceinline__ float block_reduce(float v, float* shared32, float identity) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = WarpReduce(v);
  __syncthreads();  // shared32 may still be read by a previous call
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  return WarpReduce(lane < warps ? shared32[lane] : identity);
}
__device__ __forceinline__ float block_sum(float v, float* shared32) {
  return block_reduce<warp_sum>(v, shared32, 0.f);
}
__device__ __forceinline__ float block_max(float v, float* shared32) {
  return block_reduce<warp_max>(v, shared32, -INFINITY);
}

// Where token `pos` of a sequence sits in the paged KV cache: its block
// (from the sequence's block table) times the block size, plus the offset.
__device__ __forceinline__ int64_t cache_slot(const int32_t* table, int pos, int block_size) {
  return int64_t{table[pos / block_size]} * block_size + pos % block_size;
}

// cache_slot without an integer division a call, for kernels that look up
// many keys: q = floor(pos * m / 2^32) with m = ceil(2^32 / block_size) is
// exact while pos * (m * block_size - 2^32) < 2^32, i.e. for every pos below
// 2^32 / block_size (positions stay far below 2^22, block sizes below 2^10).
// Slots fit 32 bits (a cache holds fewer than 2^31 of them).
struct SlotFinder {
  const int32_t* table;
  int block_size;
  uint32_t magic;  // 0: block_size 1, where q = pos
  __device__ SlotFinder(const int32_t* t, int size)
      : table(t), block_size(size), magic(size > 1 ? 0xffffffffu / static_cast<uint32_t>(size) + 1u : 0u) {}
  __device__ __forceinline__ int operator()(int pos) const {
    const int q = magic ? static_cast<int>(__umulhi(static_cast<uint32_t>(pos), magic)) : pos;
    return table[q] * block_size + (pos - q * block_size);
  }
};

// 2^x in one MUFU instruction (exp2f adds a range fix-up for results below
// 2^-126, which a softmax weight may flush to 0); 2^-inf = 0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// A kernel takes more than 48 KiB of dynamic shared memory only once asked to.
template <typename Kernel>
bool allow_shared_memory(Kernel kernel, std::size_t bytes, const char* what) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), what);
  return true;
}

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Calls f with the device element type of a stored dtype.
template <typename F>
void dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f16: f(__half{}); return;
    case DType::bf16: f(__nv_bfloat16{}); return;
    default: throw_error("internal: the CUDA backend has no kernels for dtype ", dtype_name(dtype));
  }
}

// dispatch_dtype and E4M3: for kernels that read FP8 weights or KV caches.
template <typename F>
void dispatch_stored_dtype(DType dtype, F&& f) {
  if (dtype == DType::f8e4m3) return f(__nv_fp8_e4m3{});
  dispatch_dtype(dtype, f);
}

}  // namespace kiln::runtime::cuda
