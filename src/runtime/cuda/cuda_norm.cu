// RMSNorm and LayerNorm: one block per row, fp32 statistics. Rows are read as
// float4 with up to four loads in flight per thread (decode's single row is
// latency-bound: a strided scalar loop spent ~15 us on 4096 floats).
#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kMaxThreads = 1024;

// Sum over the row of f(x) (f applied to each element), vectorized when cols % 4 == 0.
template <typename F>
__device__ __forceinline__ float row_sum(const float* x, int64_t cols, F f) {
  float sum = 0.f;
  if (cols % 4 == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < cols / 4; c += blockDim.x) {
      const float4 v = x4[c];
      sum += f(v.x) + f(v.y) + f(v.z) + f(v.w);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += f(x[c]);
  }
  return sum;
}

__global__ void rms_norm_kernel(const float* x, const float* w, float eps, int64_t cols, float* out) {
  __shared__ float shared[32];
  const float* xr = x + blockIdx.x * cols;
  float* o = out + blockIdx.x * cols;
  const float sum = block_sum(row_sum(xr, cols, [](float v) { return v * v; }), shared);
  const float scale = rsqrtf(sum / static_cast<float>(cols) + eps);
#pragma unroll 4
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = xr[c] * scale * w[c];
}

__global__ void layer_norm_kernel(const float* x, const float* w, const float* b, float eps, int64_t cols, float* out) {
  __shared__ float shared[32];
  const float* xr = x + blockIdx.x * cols;
  float* o = out + blockIdx.x * cols;
  const float mean = block_sum(row_sum(xr, cols, [](float v) { return v; }), shared) / static_cast<float>(cols);
  const float var = block_sum(row_sum(xr, cols, [mean](float v) { return (v - mean) * (v - mean); }), shared) /
                    static_cast<float>(cols);
  const float inv = rsqrtf(var + eps);
#pragma unroll 4
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = (xr[c] - mean) * inv * w[c] + (b ? b[c] : 0.f);
}

// A quarter of the columns per thread, in whole warps, at most 1024.
unsigned threads_for(int64_t cols) {
  const int64_t wanted = (cols / 4 + 31) / 32 * 32;
  return static_cast<unsigned>(std::min<int64_t>(kMaxThreads, std::max<int64_t>(32, wanted)));
}

}  // namespace

void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t cols, float* out, cudaStream_t stream) {
  rms_norm_kernel<<<static_cast<unsigned>(rows), threads_for(cols), 0, stream>>>(x, w, eps, cols, out);
  check_launch("rms_norm");
}

void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t rows, int64_t cols, float* out,
                cudaStream_t stream) {
  layer_norm_kernel<<<static_cast<unsigned>(rows), threads_for(cols), 0, stream>>>(x, w, b, eps, cols, out);
  check_launch("layer_norm");
}

}  // namespace kiln::runtime::cuda
