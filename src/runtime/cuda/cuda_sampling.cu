// Token choice on the GPU for the logit rows that sample or penalize, by the
// rules of runtime::sample_token (sampler.cc), so that a seed chooses the same
// tokens as on the CPU (up to the order of floating-point sums):
//   1. penalize: each row's logits are copied, the repetition penalty applied
//      to its history's tokens (read from the unpenalized row, so repeats are
//      harmless), and its indices 0..vocab-1 laid beside them;
//   2. a segmented radix sort (CUB, stable: equal logits keep index order)
//      orders each row by descending logit;
//   3. choose: one block per row walks the sorted row in chunks with a block
//      scan: softmax at the temperature over the top-k (in double), the
//      top-p prefix, then the first token whose cumulative probability
//      exceeds uniform * (kept probability). Greedy rows take position 0.
#include <climits>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kPenalizeThreads = 256;
constexpr int kChooseThreads = 1024;

__global__ void penalize_kernel(const float* logits, int64_t vocab, const SampleChoice* choices, const int32_t* history,
                                int count, float* keys, int32_t* indices, int32_t* offsets) {
  const SampleChoice c = choices[blockIdx.x];
  const float* row = logits + int64_t{c.row} * vocab;
  float* k = keys + int64_t{blockIdx.x} * vocab;
  int32_t* ix = indices + int64_t{blockIdx.x} * vocab;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    k[i] = row[i];
    ix[i] = static_cast<int32_t>(i);
  }
  if (threadIdx.x == 0) {
    offsets[blockIdx.x] = static_cast<int32_t>(blockIdx.x * vocab);
    if (static_cast<int>(blockIdx.x) == count - 1) offsets[count] = static_cast<int32_t>(int64_t{count} * vocab);
  }
  __syncthreads();
  if (c.penalty == 1.f) return;
  for (int j = c.history_begin + static_cast<int>(threadIdx.x); j < c.history_end; j += blockDim.x) {
    const int32_t t = history[j];
    if (t < 0 || t >= vocab) continue;
    const float original = row[t];
    k[t] = original > 0 ? original / c.penalty : original * c.penalty;
  }
}

using Scan = cub::BlockScan<double, kChooseThreads>;
using Reduce = cub::BlockReduce<double, kChooseThreads>;

// The first position i < n (in chunks of the block) whose inclusive prefix sum
// of prob(i) satisfies reached(prefix), and that prefix; n and 0 when none does.
template <typename Prob, typename Reached>
__device__ void first_prefix(int64_t n, Prob prob, Reached reached, typename Scan::TempStorage& temp, int& found,
                             double& found_prefix, int64_t* position, double* prefix) {
  if (threadIdx.x == 0) found = INT_MAX;
  __syncthreads();
  double carry = 0;
  for (int64_t base = 0; base < n; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const double p = i < n ? prob(i) : 0.0;
    double inclusive = 0, chunk = 0;
    Scan(temp).InclusiveSum(p, inclusive, chunk);
    const double cumulative = carry + inclusive;
    if (i < n && reached(cumulative)) atomicMin(&found, static_cast<int>(i));
    __syncthreads();
    const int f = found;
    if (f != INT_MAX && i == f) found_prefix = cumulative;
    __syncthreads();
    if (f != INT_MAX) {
      *position = f;
      *prefix = found_prefix;
      return;
    }
    carry += chunk;
  }
  *position = n;
  *prefix = carry;
}

__global__ void __launch_bounds__(kChooseThreads)
    choose_kernel(const float* logits, int64_t vocab, const SampleChoice* choices, const float* sorted,
                  const int32_t* order, int32_t* tokens, float* chosen) {
  __shared__ typename Scan::TempStorage scan_temp;
  __shared__ typename Reduce::TempStorage reduce_temp;
  __shared__ int found;
  __shared__ double found_prefix, shared_sum;
  const SampleChoice c = choices[blockIdx.x];
  const float* s = sorted + int64_t{blockIdx.x} * vocab;
  const int32_t* o = order + int64_t{blockIdx.x} * vocab;
  int64_t pick = 0;
  if (!c.greedy) {
    const int64_t k = c.top_k > 0 ? min(int64_t{c.top_k}, vocab) : vocab;
    const double top = static_cast<double>(s[0]) / c.temperature;
    auto prob = [&](int64_t i) { return exp(static_cast<double>(s[i]) / c.temperature - top); };
    double part = 0;
    for (int64_t i = threadIdx.x; i < k; i += blockDim.x) part += prob(i);
    const double sum = Reduce(reduce_temp).Sum(part);
    if (threadIdx.x == 0) shared_sum = sum;
    __syncthreads();
    const double total_mass = shared_sum;
    // Top-p: the smallest prefix whose probability reaches top_p.
    int64_t keep = k;
    double kept = total_mass;
    if (c.top_p < 1.0) {
      int64_t at = 0;
      double prefix = 0;
      first_prefix(
          k, prob, [&](double cumulative) { return cumulative / total_mass >= c.top_p; }, scan_temp, found,
          found_prefix, &at, &prefix);
      if (at < k) keep = at + 1, kept = prefix;
    }
    const double u = c.uniform * kept;
    int64_t at = 0;
    double prefix = 0;
    first_prefix(
        keep, prob, [&](double cumulative) { return cumulative > u; }, scan_temp, found, found_prefix, &at, &prefix);
    pick = at < keep ? at : keep - 1;
  }
  if (threadIdx.x == 0) {
    const int32_t token = o[pick];
    tokens[blockIdx.x] = token;
    chosen[blockIdx.x] = logits[int64_t{c.row} * vocab + token];
  }
}

struct Workspace {
  float *keys, *sorted_keys;
  int32_t *indices, *sorted_indices, *offsets;
  void* sort_temp;
  std::size_t sort_bytes;
};

std::size_t align(std::size_t n) { return (n + 255) & ~std::size_t{255}; }

std::size_t sort_temp_bytes(int count, int64_t vocab) {
  std::size_t bytes = 0;
  check(cub::DeviceSegmentedRadixSort::SortPairsDescending(
            nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
            static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), static_cast<int>(count * vocab),
            count, static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr)),
        "the sampling sort's workspace size");
  return bytes;
}

Workspace carve(void* base, int count, int64_t vocab) {
  const std::size_t n = static_cast<std::size_t>(count) * static_cast<std::size_t>(vocab);
  char* p = static_cast<char*>(base);
  Workspace w{};
  w.keys = reinterpret_cast<float*>(p), p += align(n * 4);
  w.sorted_keys = reinterpret_cast<float*>(p), p += align(n * 4);
  w.indices = reinterpret_cast<int32_t*>(p), p += align(n * 4);
  w.sorted_indices = reinterpret_cast<int32_t*>(p), p += align(n * 4);
  w.offsets = reinterpret_cast<int32_t*>(p), p += align((static_cast<std::size_t>(count) + 1) * 4);
  w.sort_temp = p;
  w.sort_bytes = sort_temp_bytes(count, vocab);
  return w;
}

}  // namespace

std::size_t sample_workspace_bytes(int count, int64_t vocab) {
  const std::size_t n = static_cast<std::size_t>(count) * static_cast<std::size_t>(vocab);
  return 4 * align(n * 4) + align((static_cast<std::size_t>(count) + 1) * 4) + align(sort_temp_bytes(count, vocab));
}

void sample(const float* logits, int64_t vocab, const SampleChoice* choices, int count, const int32_t* history,
            void* workspace, int32_t* tokens, float* chosen, cudaStream_t stream) {
  if (count == 0) return;
  Workspace w = carve(workspace, count, vocab);
  penalize_kernel<<<static_cast<unsigned>(count), kPenalizeThreads, 0, stream>>>(logits, vocab, choices, history, count,
                                                                                 w.keys, w.indices, w.offsets);
  check_launch("sampling: penalize");
  check(cub::DeviceSegmentedRadixSort::SortPairsDescending(w.sort_temp, w.sort_bytes, w.keys, w.sorted_keys, w.indices,
                                                           w.sorted_indices, static_cast<int>(count * vocab), count,
                                                           w.offsets, w.offsets + 1, 0, 32, stream),
        "sampling: sort");
  choose_kernel<<<static_cast<unsigned>(count), kChooseThreads, 0, stream>>>(logits, vocab, choices, w.sorted_keys,
                                                                             w.sorted_indices, tokens, chosen);
  check_launch("sampling: choose");
}

}  // namespace kiln::runtime::cuda
