// Per logit row: argmax (first index among equal maxima, as torch.argmax),
// the max logit, and log(sum(exp)): greedy decoding and log probabilities
// without copying the whole vocabulary to the host. One block per row.
#include <cfloat>
#include <climits>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ void better(float& value, int& index, float v, int i) {
  if (v > value || (v == value && i < index)) value = v, index = i;
}

__global__ void logits_summary_kernel(const float* logits, int64_t vocab, int32_t* argmax, float* max_logit,
                                      float* log_sum_exp) {
  __shared__ float values[32];
  __shared__ int indices[32];
  __shared__ float shared[32];
  const float* row = logits + blockIdx.x * vocab;
  float value = -INFINITY;
  int index = INT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) better(value, index, row[i], static_cast<int>(i));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, value, o);
    const int i = __shfl_xor_sync(0xffffffffu, index, o);
    better(value, index, v, i);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) values[warp] = value, indices[warp] = index;
  __syncthreads();
  value = lane < blockDim.x / 32 ? values[lane] : -INFINITY;
  index = lane < blockDim.x / 32 ? indices[lane] : INT_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, value, o);
    const int i = __shfl_xor_sync(0xffffffffu, index, o);
    better(value, index, v, i);
  }
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf(row[i] - value);
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) {
    argmax[blockIdx.x] = index;
    max_logit[blockIdx.x] = value;
    log_sum_exp[blockIdx.x] = value + logf(sum);
  }
}

}  // namespace

void logits_summary(const float* logits, int64_t rows, int64_t vocab, int32_t* argmax, float* max_logit,
                    float* log_sum_exp, cudaStream_t stream) {
  logits_summary_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, argmax, max_logit,
                                                                              log_sum_exp);
  check_launch("logits_summary");
}

}  // namespace kiln::runtime::cuda
