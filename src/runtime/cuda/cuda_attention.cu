// Attention over the paged KV cache, for prefill chunks and decode alike.
// The cache holds fp32, fp16, bf16 or E4M3 (FP8 KV: values stored unscaled,
// rounded to nearest even and saturating at +-448, read back exactly).
//
// attention (decode rows: one query each) is split over the sequence, as
// flash-decoding: a block takes one partition of a row's keys for one KV head
// and the q heads that share it (up to 4 per block), so K and V are read once
// per group. Lanes load 16 bytes of a key row at a time (8 fp16/bf16 values, 4
// fp32): D/8 lanes per key row for fp16 D=128, so one warp load covers two keys;
// each warp keeps several loads of K and of V in flight per iteration, issued
// together before its scores are reduced, and its own online softmax (running
// max, sum, weighted V) in registers. The block's warps merge through shared
// memory; a row whose keys fit one partition is written straight to `out`,
// others leave (max, sum, unnormalized V) per q head and partition in a
// workspace that merge_partitions_kernel combines. The partition count comes
// from shape.max_context, not the rows' lengths: partitions past a row's end
// return at once, and the merge reads only the row's own.
//
// attention_per_head, the previous kernel, is the path for head sizes that do
// not split into 16-byte vectors: one block per (q head, row) whose warps take
// the row's keys round-robin. Both: grouped- and multi-query heads read their
// shared KV head; ALiBi adds slope * key position (softmax ignores the per-row
// shift); a sliding window starts the keys at position - window + 1.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kMaxHeadDim = 256;

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

// ---- The split (flash-decoding) kernel.

constexpr int kSplitWarps = 4;
constexpr int kSplitThreads = kSplitWarps * 32;
// q heads of one KV head per block: their q rows and accumulators live in
// registers (151 at 4 heads, fp16 D=128; 8 heads take ~230 and halve the
// resident warps). Larger groups take several blocks per KV head, adjacent in
// the grid, so the repeated K/V reads mostly come from L2.
constexpr int kMaxGroupTile = 4;
constexpr int kPartitionAlign = 64;   // partitions are multiples of this many keys
constexpr int kMinPartition = 64;     // keys: one iteration of the block's 4 warps (MHA fp16 D=128);
                                      // the tensor-core kernel's warp takes four 16-key chunks of it
constexpr int kTargetBlocks = 2048;   // blocks a launch aims for (an H100 holds ~1000 at once)
constexpr int kMaxPartitions = 2048;  // per row: the merge keeps one weight each in shared memory
constexpr int kMergeThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

// 16-byte loads of K and V per lane per iteration: fewer when more q heads'
// accumulators share the registers; at most 16 keys per warp iteration.
__host__ __device__ constexpr int split_unroll(int lanes, int vectors, int heads) {
  int u = (heads <= 2 ? 8 : heads <= 4 ? 4 : 2) / vectors;
  while (u > 1 && u * (32 / lanes) > 16) u /= 2;
  return u;
}

// KILN_CUDA_ATTN_HEADS=1|2 caps the q heads per block below kMaxGroupTile
// (fewer registers per thread, more warps per SM, K and V read once per tile
// of heads), for comparison.
int max_group_tile() {
  static const int tile = [] {
    const char* v = std::getenv("KILN_CUDA_ATTN_HEADS");
    const int n = v ? std::atoi(v) : 0;
    return n == 1 || n == 2 ? n : kMaxGroupTile;
  }();
  return tile;
}

struct SplitPlan {
  int heads = 1;       // q heads per block (a power of two; the group is tiled by it)
  int tiles = 1;       // blocks per KV head
  int partition = 0;   // keys per partition
  int partitions = 1;  // per row
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Enough partitions to give the GPU about kTargetBlocks blocks when the rows are few, one per row when they are many.
SplitPlan split_plan(const AttentionShape& shape) {
  SplitPlan plan;
  const int group = shape.num_heads / shape.num_kv_heads;
  while (plan.heads < group && plan.heads < max_group_tile()) plan.heads *= 2;
  plan.tiles = static_cast<int>(ceil_div(group, plan.heads));
  const AttentionPartitions parts =
      attention_partitions(shape, int64_t{shape.num_kv_heads} * plan.tiles, kTargetBlocks);
  plan.partition = parts.partition;
  plan.partitions = parts.partitions;
  return plan;
}

// Whether head_dim splits into 16-byte vectors of the KV dtype (and a lane's share is at most two).
bool split_supported(int head_dim, std::size_t kv_bytes) {
  const int vec = 16 / static_cast<int>(kv_bytes);
  return head_dim % vec == 0 && head_dim / vec <= 64;
}

// The 16 bytes of a K or V vector as fp32.
__device__ __forceinline__ void unpack(const uint4& raw, const float*, float* f) {
  f[0] = __uint_as_float(raw.x);
  f[1] = __uint_as_float(raw.y);
  f[2] = __uint_as_float(raw.z);
  f[3] = __uint_as_float(raw.w);
}
__device__ __forceinline__ void unpack(const uint4& raw, const __half* type, float* f) { unpack8(raw, type, f); }
__device__ __forceinline__ void unpack(const uint4& raw, const __nv_bfloat16* type, float* f) { unpack8(raw, type, f); }
__device__ __forceinline__ void unpack(const uint4& raw, const __nv_fp8_e4m3*, float* f) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
  unpack_e4m3<4>(words, f);
}

// Which partitions of a row hold keys: the row's first key and key count.
struct RowKeys {
  int first, count;
};
__device__ __forceinline__ RowKeys row_keys(const AttentionShape& shape, int pos) {
  const int first = shape.sliding_window > 0 ? max(0, pos - shape.sliding_window + 1) : 0;
  return {first, pos - first + 1};
}
// Partitions with keys in a row of `count` keys (the last one takes any excess
// over partitions * partition, so keys past max_context are never dropped).
__device__ __forceinline__ int row_partitions(int count, int partition, int partitions) {
  return min(partitions, (count + partition - 1) / partition);
}

// Block (partition, KV head x q-head tile, row index). LANES lanes share a key
// row (a power of two: D / VEC rounded up, lanes past it idle), so a warp load
// covers 32 / LANES keys; each lane holds NV vectors of VEC dims per key (lane
// l: vectors l, l + LANES). GT q heads per block, their q rows in registers.
template <typename KV, int LANES, int NV, int GT>
__global__ void __launch_bounds__(kSplitThreads)
    split_attention_kernel(const float* __restrict__ qkv, AttentionShape shape, StepRows step,
                           const int32_t* __restrict__ row_list, const KV* __restrict__ keys,
                           const KV* __restrict__ values, int partition, int partitions, float* __restrict__ out,
                           float* __restrict__ workspace) {
  constexpr int VEC = 16 / static_cast<int>(sizeof(KV));
  constexpr int E = NV * VEC;      // dims per lane per key
  constexpr int KPL = 32 / LANES;  // keys per warp load
  constexpr int U = split_unroll(LANES, NV, GT);
  constexpr int KW = U * KPL;       // keys per warp iteration
  constexpr int kDims = LANES * E;  // dims the lanes of a key cover (>= head_dim)
  __shared__ float shared_max[kSplitWarps][GT], shared_sum[kSplitWarps][GT];
  __shared__ float shared_acc[kSplitWarps][GT][kDims];

  const int part = blockIdx.x, index = blockIdx.z;
  const int row = row_list ? row_list[index] : index;
  const int pos = step.positions[row];
  const RowKeys rk = row_keys(shape, pos);
  const int begin = rk.first + part * partition;
  if (begin > pos) return;  // past the row's keys: the merge reads no partial of it
  const int end = part == partitions - 1 ? pos + 1 : min(pos + 1, begin + partition);
  const bool single = part == 0 && end == pos + 1;

  const int group = shape.num_heads / shape.num_kv_heads;
  const int tiles = (group + GT - 1) / GT;
  const int kvh = static_cast<int>(blockIdx.y) / tiles, tile = static_cast<int>(blockIdx.y) % tiles;
  const int h0 = kvh * group + tile * GT;
  const int nh = min(GT, group - tile * GT);
  const int D = shape.head_dim, d_vectors = D / VEC;
  const int q_width = shape.num_heads * D, kv_width = shape.num_kv_heads * D;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane % LANES, which = lane / LANES;  // vector within the key row, key within the load

  // q, pre-scaled by log2(e) / sqrt(D): scores live in the log2 domain (exp2f).
  const float q_scale = rsqrtf(static_cast<float>(D)) * kLog2e;
  float q[GT][E], slope[GT];
  const float* q_row = qkv + int64_t{row} * (q_width + 2 * kv_width) + int64_t{h0} * D;
#pragma unroll
  for (int g = 0; g < GT; ++g) {
    slope[g] = shape.alibi && g < nh ? shape.alibi_slopes[h0 + g] * kLog2e : 0.f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int v = sub + j * LANES;
      const bool ok = g < nh && v < d_vectors;
#pragma unroll
      for (int e = 0; e < VEC; e += 4) {
        const float4 x =
            ok ? *reinterpret_cast<const float4*>(q_row + g * D + v * VEC + e) : make_float4(0.f, 0.f, 0.f, 0.f);
        q[g][j * VEC + e] = x.x * q_scale;
        q[g][j * VEC + e + 1] = x.y * q_scale;
        q[g][j * VEC + e + 2] = x.z * q_scale;
        q[g][j * VEC + e + 3] = x.w * q_scale;
      }
    }
  }

  float running_max[GT], running_sum[GT], acc[GT][E];
#pragma unroll
  for (int g = 0; g < GT; ++g) {
    running_max[g] = -INFINITY;
    running_sum[g] = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[g][e] = 0.f;
  }

  const int32_t* table = step.block_tables + step.table_offset[row];
  const int block_size = step.block_size;
  const bool pow2_blocks = (block_size & (block_size - 1)) == 0;  // the usual 16: shifts, not divisions
  const int block_shift = __ffs(block_size) - 1;
  const int64_t head_offset = int64_t{kvh} * D;
  // Slots of an iteration's keys (-1: past the partition), looked up one iteration ahead.
  auto lookup = [&](int k0, int(&slot)[U]) {
    if (pow2_blocks) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int k = k0 + u * KPL + which;
        slot[u] = k < end ? (table[k >> block_shift] << block_shift) + (k & (block_size - 1)) : -1;
      }
    } else {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int k = k0 + u * KPL + which;
        slot[u] = k < end ? static_cast<int>(cache_slot(table, k, block_size)) : -1;
      }
    }
  };
  constexpr int kStride = kSplitWarps * KW;
  int k0 = begin + warp * KW;
  int slot[U];
  lookup(k0, slot);
  for (; k0 < end; k0 += kStride) {
    // Every K and V load of the iteration is issued before any of them is used.
    auto load_rows = [&](const KV* cache, uint4(&raw)[U][NV]) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int j = 0; j < NV; ++j) {
          const bool ok = slot[u] >= 0 && sub + j * LANES < d_vectors;
          const int64_t at = int64_t{slot[u]} * kv_width + head_offset + (sub + j * LANES) * VEC;
          raw[u][j] = ok ? __ldg(reinterpret_cast<const uint4*>(cache + at)) : make_uint4(0, 0, 0, 0);
        }
      }
    };
    uint4 k_raw[U][NV], v_raw[U][NV];
    load_rows(keys, k_raw);
    load_rows(values, v_raw);
    int next[U];
    lookup(k0 + kStride, next);

    // Scores: each lane's partial dot products, summed over the key's LANES lanes.
    float score[U][GT];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[E];
#pragma unroll
      for (int j = 0; j < NV; ++j) unpack(k_raw[u][j], keys, kf + j * VEC);
#pragma unroll
      for (int g = 0; g < GT; ++g) {
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) dot = fmaf(q[g][e], kf[e], dot);
        score[u][g] = dot;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int k = k0 + u * KPL + which;
#pragma unroll
      for (int g = 0; g < GT; ++g) {
        float dot = score[u][g];
#pragma unroll
        for (int o = LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        score[u][g] = slot[u] >= 0 ? fmaf(slope[g], static_cast<float>(k), dot) : -INFINITY;
      }
    }
    // Online softmax, one running max per q head for the whole warp (key k0 is
    // always in the partition, so the new max is finite).
#pragma unroll
    for (int g = 0; g < GT; ++g) {
      float top = score[0][g];
#pragma unroll
      for (int u = 1; u < U; ++u) top = fmaxf(top, score[u][g]);
#pragma unroll
      for (int o = 16; o >= LANES; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
      top = fmaxf(top, running_max[g]);
      const float correction = exp2f(running_max[g] - top);  // 0 while nothing was seen
      running_max[g] = top;
      running_sum[g] *= correction;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[g][e] *= correction;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[E];
#pragma unroll
      for (int j = 0; j < NV; ++j) unpack(v_raw[u][j], values, vf + j * VEC);
#pragma unroll
      for (int g = 0; g < GT; ++g) {
        const float p = exp2f(score[u][g] - running_max[g]);  // 0 for keys past the partition
        running_sum[g] += p;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = fmaf(p, vf[e], acc[g][e]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) slot[u] = next[u];
  }

  // The warp's keys of a load sit in different lane groups: sum the groups.
#pragma unroll
  for (int o = 16; o >= LANES; o >>= 1) {
#pragma unroll
    for (int g = 0; g < GT; ++g) {
      running_sum[g] += __shfl_xor_sync(0xffffffffu, running_sum[g], o);
#pragma unroll
      for (int e = 0; e < E; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < GT; ++g) {
      shared_max[warp][g] = running_max[g];
      shared_sum[warp][g] = running_sum[g];
    }
  }
  if (which == 0) {
#pragma unroll
    for (int g = 0; g < GT; ++g) {
#pragma unroll
      for (int j = 0; j < NV; ++j) {
#pragma unroll
        for (int e = 0; e < VEC; ++e) shared_acc[warp][g][(sub + j * LANES) * VEC + e] = acc[g][j * VEC + e];
      }
    }
  }
  __syncthreads();

  // Merge the warps (warp 0 always saw key `begin`, so the max is finite).
  const int64_t at = (int64_t{index} * shape.num_heads + h0) * partitions + part;
  for (int t = threadIdx.x; t < nh * D; t += kSplitThreads) {
    const int g = t / D, d = t % D;
    float top = -INFINITY;
#pragma unroll
    for (int w = 0; w < kSplitWarps; ++w) top = fmaxf(top, shared_max[w][g]);
    float total = 0.f, v = 0.f;
#pragma unroll
    for (int w = 0; w < kSplitWarps; ++w) {
      const float weight = exp2f(shared_max[w][g] - top);  // 0 for a warp without keys
      total += shared_sum[w][g] * weight;
      v += shared_acc[w][g][d] * weight;
    }
    if (single) {
      out[int64_t{row} * q_width + (h0 + g) * D + d] = v / total;
    } else {  // [index][head][partition][D] partials, then [index][head][partition][2] (max, sum)
      const int64_t here = at + int64_t{g} * partitions;
      workspace[here * D + d] = v;
      if (d == 0) {
        float* stats = workspace + int64_t{shape.rows} * shape.num_heads * partitions * D + here * 2;
        stats[0] = top;
        stats[1] = total;
      }
    }
  }
}

// One block per (q head, row index) of rows with more than one partition:
// out = sum_p exp2(max_p - max) acc_p / sum_p exp2(max_p - max) sum_p.
__global__ void __launch_bounds__(kMergeThreads)
    merge_partitions_kernel(AttentionShape shape, StepRows step, const int32_t* __restrict__ row_list, int partition,
                            int partitions, const float* __restrict__ workspace, float* __restrict__ out) {
  __shared__ float weights[kMaxPartitions];
  __shared__ float reduce[32];
  const int h = blockIdx.x, index = blockIdx.y;
  const int row = row_list ? row_list[index] : index;
  const RowKeys rk = row_keys(shape, step.positions[row]);
  const int n = row_partitions(rk.count, partition, partitions);
  if (n <= 1) return;  // written by its one block
  const int D = shape.head_dim;
  const int64_t at = (int64_t{index} * shape.num_heads + h) * partitions;
  const float* acc = workspace + at * D;
  const float* stats = workspace + int64_t{shape.rows} * shape.num_heads * partitions * D + at * 2;

  float top = -INFINITY;
  for (int p = threadIdx.x; p < n; p += kMergeThreads) top = fmaxf(top, stats[2 * p]);
  top = warp_max(top);
  if (threadIdx.x % 32 == 0) reduce[threadIdx.x / 32] = top;
  __syncthreads();
  top = reduce[0];
#pragma unroll
  for (int w = 1; w < kMergeThreads / 32; ++w) top = fmaxf(top, reduce[w]);
  float total = 0.f;
  for (int p = threadIdx.x; p < n; p += kMergeThreads) {
    const float weight = exp2f(stats[2 * p] - top);
    weights[p] = weight;
    total += stats[2 * p + 1] * weight;
  }
  total = block_sum(total, reduce);  // its barriers also publish `weights`
  const float inv = 1.f / total;
  float* o = out + int64_t{row} * shape.num_heads * D + int64_t{h} * D;
  for (int d = threadIdx.x; d < D; d += kMergeThreads) {
    float v = 0.f;
    for (int p = 0; p < n; ++p) v = fmaf(acc[int64_t{p} * D + d], weights[p], v);
    o[d] = v * inv;
  }
}

template <typename KV, int LANES, int NV>
void launch_split(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                  const KV* keys, const KV* values, const SplitPlan& plan, float* out, float* workspace,
                  cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(plan.partitions), static_cast<unsigned>(shape.num_kv_heads * plan.tiles),
                  static_cast<unsigned>(shape.rows));
  auto run = [&](auto kernel) {
    kernel<<<grid, kSplitThreads, 0, stream>>>(qkv, shape, step, row_list, keys, values, plan.partition,
                                               plan.partitions, out, workspace);
  };
  switch (plan.heads) {
    case 1: run(split_attention_kernel<KV, LANES, NV, 1>); break;
    case 2: run(split_attention_kernel<KV, LANES, NV, 2>); break;
    default: run(split_attention_kernel<KV, LANES, NV, 4>); break;
  }
}

template <typename KV>
void launch_split_attention(const float* qkv, const AttentionShape& shape, const StepRows& step,
                            const int32_t* row_list, const KV* keys, const KV* values, const SplitPlan& plan,
                            float* out, float* workspace, cudaStream_t stream) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(KV));
  const int vectors = shape.head_dim / kVec;
  if (vectors <= 4) {
    launch_split<KV, 4, 1>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  } else if (vectors <= 8) {
    launch_split<KV, 8, 1>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  } else if (vectors <= 16) {
    launch_split<KV, 16, 1>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  } else if (vectors <= 32) {
    launch_split<KV, 32, 1>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  } else if constexpr (kVec == 4) {  // fp32 head_dim 132..256: two vectors per lane
    launch_split<KV, 32, 2>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  }
}

void check_shape(const AttentionShape& shape) {
  if (shape.head_dim > kMaxHeadDim) throw_error("the CUDA attention kernel takes head_dim up to ", kMaxHeadDim);
  if (shape.alibi && shape.num_heads > kMaxAlibiHeads) {
    throw_error("the CUDA attention kernel takes ALiBi models with up to ", kMaxAlibiHeads, " heads per rank");
  }
}

// KILN_CUDA_DECODE_ATTENTION=cores|mma picks the decode kernel for every
// cache it can take (comparison). By default an E4M3 cache takes the
// tensor-core kernel where kiln_attention_check measured it faster
// (bench/results/fp8-2026-12-03c.md): groups of 8 or more q heads per KV head,
// and grouped heads at batch sizes that need no partitions (Llama-3-8B at
// batch 512: 1.77x); the CUDA-core kernel's four warps per partition win on
// MHA and on the partitioned shapes of small batches.
bool decode_on_tensor_cores(const AttentionShape& shape, DType kv_dtype) {
  static const int choice = [] {
    const char* v = std::getenv("KILN_CUDA_DECODE_ATTENTION");
    if (v && std::string(v) == "cores") return 0;
    if (v && std::string(v) == "mma") return 2;
    return 1;
  }();
  if (choice == 0 || !decode_attention_mma_supports(shape.head_dim, kv_dtype)) return false;
  if (choice == 2) return true;
  const int group = shape.num_heads / shape.num_kv_heads;
  const bool unsplit = decode_attention_mma_partitions(shape).partitions == 1;
  return kv_dtype == DType::f8e4m3 && (group >= 8 || (group >= 2 && unsplit));
}

}  // namespace

AttentionPartitions attention_partitions(const AttentionShape& shape, int64_t items_per_row, int64_t target_items) {
  const int64_t span = shape.sliding_window > 0 ? std::min(shape.sliding_window, shape.max_context) : shape.max_context;
  const int64_t items = std::max<int64_t>(1, int64_t{shape.rows} * items_per_row);
  const int64_t wanted = std::max<int64_t>(1, ceil_div(target_items, items));
  int64_t partition = ceil_div(ceil_div(span, wanted), kPartitionAlign) * kPartitionAlign;
  partition = std::max<int64_t>(partition, kMinPartition);
  partition = std::max<int64_t>(partition, ceil_div(ceil_div(span, kMaxPartitions), kPartitionAlign) * kPartitionAlign);
  return {static_cast<int>(partition), static_cast<int>(ceil_div(span, partition))};
}

void merge_attention_partitions(const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                                int partition, int partitions, const float* workspace, float* out,
                                cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(shape.num_heads), static_cast<unsigned>(shape.rows));
  merge_partitions_kernel<<<grid, kMergeThreads, 0, stream>>>(shape, step, row_list, partition, partitions, workspace,
                                                              out);
  check_launch("attention (merge)");
}

void attention_per_head(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                        const void* keys, const void* values, DType kv_dtype, float* out, cudaStream_t stream) {
  check_shape(shape);
  if (shape.rows == 0) return;
  dispatch_stored_dtype(kv_dtype, [&](auto t) {
    using T = decltype(t);
    launch_attention<T>(qkv, shape, step, row_list, static_cast<const T*>(keys), static_cast<const T*>(values), out,
                        stream);
  });
  check_launch("attention");
}

int64_t attention_workspace_floats(const AttentionShape& shape) {
  if (shape.max_context <= 0) throw_error("internal: the CUDA attention needs AttentionShape::max_context");
  // Enough for either kernel (the cache dtype, which picks one, is not part of the shape).
  int partitions = split_plan(shape).partitions;
  if (decode_attention_mma_supports(shape.head_dim, DType::f8e4m3)) {
    partitions = std::max(partitions, decode_attention_mma_partitions(shape).partitions);
  }
  if (partitions <= 1) return 0;
  return int64_t{shape.rows} * shape.num_heads * partitions * (shape.head_dim + 2);
}

void attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
               const void* keys, const void* values, DType kv_dtype, float* out, float* workspace,
               cudaStream_t stream) {
  check_shape(shape);
  if (shape.rows == 0) return;
  if (decode_on_tensor_cores(shape, kv_dtype)) {
    if (attention_workspace_floats(shape) > 0 && !workspace) {
      throw_error("internal: the CUDA attention needs its workspace for this shape");
    }
    decode_attention_mma(qkv, shape, step, row_list, keys, values, kv_dtype, out, workspace, stream);
    return;
  }
  attention_on_cuda_cores(qkv, shape, step, row_list, keys, values, kv_dtype, out, workspace, stream);
}

void attention_on_cuda_cores(const float* qkv, const AttentionShape& shape, const StepRows& step,
                             const int32_t* row_list, const void* keys, const void* values, DType kv_dtype, float* out,
                             float* workspace, cudaStream_t stream) {
  check_shape(shape);
  if (shape.rows == 0) return;
  if (!split_supported(shape.head_dim, dtype_size(kv_dtype))) {
    attention_per_head(qkv, shape, step, row_list, keys, values, kv_dtype, out, stream);
    return;
  }
  if (shape.rows > 65535) throw_error("the CUDA attention kernel takes up to 65535 decode rows, got ", shape.rows);
  if (attention_workspace_floats(shape) > 0 && !workspace) {
    throw_error("internal: the CUDA attention needs its workspace for this shape");
  }
  const SplitPlan plan = split_plan(shape);
  dispatch_stored_dtype(kv_dtype, [&](auto t) {
    using T = decltype(t);
    launch_split_attention<T>(qkv, shape, step, row_list, static_cast<const T*>(keys), static_cast<const T*>(values),
                              plan, out, workspace, stream);
  });
  check_launch("attention");
  if (plan.partitions > 1) {
    merge_attention_partitions(shape, step, row_list, plan.partition, plan.partitions, workspace, out, stream);
  }
}

}  // namespace kiln::runtime::cuda
