// Mixture-of-experts routing on the device (decode steps): the same choice as
// runtime::choose_experts on the host (softmax in double, the top k by
// repeated selection with ties to the lower index, weights renormalized over
// the k when asked), written as a dense [rows][experts] weight matrix plus a
// per-expert "used" flag, so the experts' products can skip themselves
// (gemv's run_if) and the step never waits for the host.
#include <cmath>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kRouteThreads = 32;

__global__ void route_experts_kernel(const float* logits, int rows, int experts, int top_k, bool normalize,
                                     float* weights, float* used) {
  for (int e = threadIdx.x; e < experts; e += blockDim.x) used[e] = 0.f;
  __syncthreads();
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const float* l = logits + int64_t{r} * experts;
    float* w = weights + int64_t{r} * experts;
    float top = l[0];
    for (int e = 1; e < experts; ++e) top = fmaxf(top, l[e]);
    double probs[kMaxRoutedExperts];
    double sum = 0;
    for (int e = 0; e < experts; ++e) {
      probs[e] = exp(static_cast<double>(l[e]) - static_cast<double>(top));
      sum += probs[e];
      w[e] = 0.f;
    }
    int picks[kMaxExpertsPerToken];
    uint64_t taken = 0;
    double chosen = 0;
    for (int k = 0; k < top_k; ++k) {
      int best = -1;
      for (int e = 0; e < experts; ++e) {
        if (!((taken >> e) & 1) && (best < 0 || probs[e] > probs[best])) best = e;
      }
      taken |= uint64_t{1} << best;
      picks[k] = best;
      chosen += probs[best];
    }
    for (int k = 0; k < top_k; ++k) {
      w[picks[k]] = static_cast<float>(probs[picks[k]] / (normalize ? chosen : sum));
      used[picks[k]] = 1.f;
    }
  }
}

__global__ void scale_add_if_kernel(const float* flag, const float* src, const float* weights, int64_t stride,
                                    int64_t rows, int64_t cols, float* x) {
  if (*flag == 0.f) return;
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= rows * cols) return;
  const float w = weights[(i / cols) * stride];
  if (w != 0.f) x[i] += w * src[i];
}

}  // namespace

void route_experts(const float* logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize, float* weights,
                   float* used, cudaStream_t stream) {
  if (experts > kMaxRoutedExperts || top_k > kMaxExpertsPerToken || top_k > experts || top_k < 1) {
    throw_error("the CUDA backend routes up to ", kMaxRoutedExperts, " experts, ", kMaxExpertsPerToken,
                " per token; this model has ", experts, " and ", top_k);
  }
  route_experts_kernel<<<1, kRouteThreads, 0, stream>>>(logits, static_cast<int>(rows), static_cast<int>(experts),
                                                        static_cast<int>(top_k), normalize, weights, used);
  check_launch("route_experts");
}

void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows, int64_t cols,
                  float* x, cudaStream_t stream) {
  constexpr int kThreads = 256;
  scale_add_if_kernel<<<blocks_for(rows * cols, kThreads), kThreads, 0, stream>>>(flag, src, weights, stride, rows,
                                                                                  cols, x);
  check_launch("scale_add_if");
}

}  // namespace kiln::runtime::cuda
