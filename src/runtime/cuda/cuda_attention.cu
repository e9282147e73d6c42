// Attention over the paged KV cache, for prefill chunks and decode alike.
//
// rope_kv_write applies rotary embeddings and stores the step's K and V at each
// row's slot (block table entry of its position). attention then runs one block per (q head, row): its warps
// take the row's keys round-robin, each keeping an online softmax (running
// max, sum, weighted V) in registers, and merge through shared memory at the
// end. Grouped- and multi-query heads read their shared KV head; ALiBi adds
// slope * key position (softmax ignores the per-row shift); a sliding window
// starts the keys at position - window + 1.
#include <cmath>
#include <type_traits>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kMaxHeadDim = 256;

__device__ __forceinline__ int64_t slot_of(const StepRows& step, int row, int pos) {
  return cache_slot(step.block_tables + step.table_offset[row], pos, step.block_size);
}

// Work items of one row: q rotation pairs, k rotation pairs, k dims past the
// rotary ones, V elements.
template <typename KV>
__global__ void rope_kv_write_kernel(float* qkv, AttentionShape shape, StepRows step, Rotary rotary, KV* keys,
                                     KV* values) {
  const int row = blockIdx.y;
  const int D = shape.head_dim, half = rotary.half, hq = shape.num_heads, hk = shape.num_kv_heads;
  const int q_width = hq * D, kv_width = hk * D;
  const int q_pairs = hq * half, k_pairs = hk * half, k_rest = hk * (D - 2 * half);
  const int item = blockIdx.x * blockDim.x + threadIdx.x;
  if (item >= q_pairs + k_pairs + k_rest + kv_width) return;
  float* x = qkv + int64_t{row} * (q_width + 2 * kv_width);
  const int pos = step.positions[row];
  const int64_t at = slot_of(step, row, pos) * kv_width;
  if (item < q_pairs + k_pairs) {
    const int h = item / half, i = item % half;  // h < hq: a q head, else a k head
    float* v = x + h * D;
    const int a = rotary.neox ? i : 2 * i, b = rotary.neox ? i + half : 2 * i + 1;
    const float c = rotary.cos[int64_t{pos} * half + i], s = rotary.sin[int64_t{pos} * half + i];
    const float x0 = v[a], x1 = v[b];
    const float r0 = x0 * c - x1 * s, r1 = x1 * c + x0 * s;
    if (h < hq) {
      v[a] = r0;
      v[b] = r1;
    } else {
      const int64_t k = at + (h - hq) * D;
      keys[k + a] = from_float<KV>(r0);
      keys[k + b] = from_float<KV>(r1);
    }
  } else if (item < q_pairs + k_pairs + k_rest) {
    const int j = item - q_pairs - k_pairs, rest = D - 2 * half;
    const int h = j / rest, d = 2 * half + j % rest;
    keys[at + h * D + d] = from_float<KV>(x[q_width + h * D + d]);
  } else {
    const int j = item - q_pairs - k_pairs - k_rest;
    values[at + j] = from_float<KV>(x[q_width + kv_width + j]);
  }
}

// A lane's DPL consecutive head dimensions of one cached K or V row, as fp32:
// one vector load when the row splits evenly into lanes (head_dim % DPL == 0).
template <typename KV, int DPL>
__device__ __forceinline__ void load_lane(const KV* row, int lane, int D, float (&out)[DPL]) {
  constexpr int kBytes = DPL * static_cast<int>(sizeof(KV));
  if constexpr (kBytes == 4 || kBytes == 8 || kBytes == 16) {
    if (D % DPL == 0) {
      using Vec = std::conditional_t<kBytes == 4, uint32_t, std::conditional_t<kBytes == 8, uint2, uint4>>;
      if (lane * DPL < D) {
        const Vec v = *reinterpret_cast<const Vec*>(row + lane * DPL);
        const KV* e = reinterpret_cast<const KV*>(&v);
#pragma unroll
        for (int i = 0; i < DPL; ++i) out[i] = to_float(e[i]);
      } else {
#pragma unroll
        for (int i = 0; i < DPL; ++i) out[i] = 0.f;
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane * DPL + i;
    out[i] = d < D ? to_float(row[d]) : 0.f;
  }
}

// DPL: head dimensions per lane (lane l holds dims [l * DPL, (l + 1) * DPL)).
// Each warp takes kUnroll keys at a time so their loads are in flight together.
template <typename KV, int DPL>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const float* qkv, AttentionShape shape, StepRows step, const int32_t* row_list, const KV* keys,
                     const KV* values, float* out) {
  constexpr int kUnroll = 8;
  __shared__ float shared_max[kWarps], shared_sum[kWarps];
  __shared__ float shared_acc[kWarps][32 * DPL];
  const int h = blockIdx.x, row = row_list ? row_list[blockIdx.y] : static_cast<int>(blockIdx.y);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int D = shape.head_dim;
  const int q_width = shape.num_heads * D, kv_width = shape.num_kv_heads * D;
  const int kvh = h / (shape.num_heads / shape.num_kv_heads);
  const float scale = rsqrtf(static_cast<float>(D));
  const float slope = shape.alibi ? shape.alibi_slopes[h] : 0.f;

  const float* q = qkv + int64_t{row} * (q_width + 2 * kv_width) + h * D;
  float qr[DPL], acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane * DPL + i;
    qr[i] = d < D ? q[d] * scale : 0.f;
    acc[i] = 0.f;
  }
  const int pos = step.positions[row];
  const int first = shape.sliding_window > 0 ? max(0, pos - shape.sliding_window + 1) : 0;
  float running_max = -INFINITY, running_sum = 0.f;
  const int32_t* table = step.block_tables + step.table_offset[row];  // the row's block table, read once
  for (int k0 = first + warp * kUnroll; k0 <= pos; k0 += kWarps * kUnroll) {
    int64_t base[kUnroll];
    float score[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = min(k0 + u, pos);  // past the end: a valid slot, masked below
      base[u] = cache_slot(table, k, step.block_size) * kv_width + int64_t{kvh} * D;
      float kf[DPL];
      load_lane<KV, DPL>(keys + base[u], lane, D, kf);
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < DPL; ++i) dot = fmaf(qr[i], kf[i], dot);
      score[u] = dot;
    }
    float top = running_max;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      score[u] = k0 + u <= pos ? warp_sum(score[u]) + slope * static_cast<float>(k0 + u) : -INFINITY;
      top = fmaxf(top, score[u]);
    }
    const float correction = expf(running_max - top);
    running_sum *= correction;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[i] *= correction;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const float p = expf(score[u] - top);  // 0 for masked keys
      running_sum += p;
      float vf[DPL];
      load_lane<KV, DPL>(values + base[u], lane, D, vf);
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[i] = fmaf(p, vf[i], acc[i]);
    }
    running_max = top;
  }
  if (lane == 0) {
    shared_max[warp] = running_max;
    shared_sum[warp] = running_sum;
  }
#pragma unroll
  for (int i = 0; i < DPL; ++i) shared_acc[warp][lane * DPL + i] = acc[i];
  __syncthreads();
  float top = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) top = fmaxf(top, shared_max[w]);
  float total = 0.f;
  float weights[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    weights[w] = shared_max[w] == -INFINITY ? 0.f : expf(shared_max[w] - top);
    total += shared_sum[w] * weights[w];
  }
  float* o = out + int64_t{row} * q_width + h * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += shared_acc[w][d] * weights[w];
    o[d] = v / total;
  }
}

template <typename KV>
void launch_attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                      const KV* keys, const KV* values, float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(shape.num_heads), static_cast<unsigned>(shape.rows));
  const int D = shape.head_dim;
  if (D <= 32) {
    attention_kernel<KV, 1><<<grid, kWarps * 32, 0, stream>>>(qkv, shape, step, row_list, keys, values, out);
  } else if (D <= 64) {
    attention_kernel<KV, 2><<<grid, kWarps * 32, 0, stream>>>(qkv, shape, step, row_list, keys, values, out);
  } else if (D <= 128) {
    attention_kernel<KV, 4><<<grid, kWarps * 32, 0, stream>>>(qkv, shape, step, row_list, keys, values, out);
  } else {
    attention_kernel<KV, 8><<<grid, kWarps * 32, 0, stream>>>(qkv, shape, step, row_list, keys, values, out);
  }
}

void check_shape(const AttentionShape& shape) {
  if (shape.head_dim > kMaxHeadDim) throw_error("the CUDA attention kernel takes head_dim up to ", kMaxHeadDim);
  if (shape.alibi && shape.num_heads > kMaxAlibiHeads) {
    throw_error("the CUDA attention kernel takes ALiBi models with up to ", kMaxAlibiHeads, " heads per rank");
  }
}

}  // namespace

void rope_kv_write(float* qkv, const AttentionShape& shape, const StepRows& step, const Rotary& rotary, void* keys,
                   void* values, DType kv_dtype, cudaStream_t stream) {
  check_shape(shape);
  const int items = (shape.num_heads + shape.num_kv_heads) * rotary.half +
                    shape.num_kv_heads * (shape.head_dim - 2 * rotary.half) + shape.num_kv_heads * shape.head_dim;
  const dim3 grid(blocks_for(items, 256), static_cast<unsigned>(shape.rows));
  dispatch_dtype(kv_dtype, [&](auto t) {
    using T = decltype(t);
    rope_kv_write_kernel<T>
        <<<grid, 256, 0, stream>>>(qkv, shape, step, rotary, static_cast<T*>(keys), static_cast<T*>(values));
  });
  check_launch("rope_kv_write");
}

void attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
               const void* keys, const void* values, DType kv_dtype, float* out, cudaStream_t stream) {
  check_shape(shape);
  dispatch_dtype(kv_dtype, [&](auto t) {
    using T = decltype(t);
    launch_attention<T>(qkv, shape, step, row_list, static_cast<const T*>(keys), static_cast<const T*>(values), out,
                        stream);
  });
  check_launch("attention");
}

}  // namespace kiln::runtime::cuda
