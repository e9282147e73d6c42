// Decode attention on tensor cores (mma.sync.m16n8k16, fp32 accumulation),
// for E4M3 and 16-bit KV caches: the split (flash-decoding) attention of
// cuda_attention.cu with its products moved off the CUDA cores. There each KV
// element costs a conversion and one FMA per q head, which binds the kernel
// to the SM's arithmetic (an E4M3 cache read at ~1.2 TB/s at batch 512);
// here a warp's 16 keys of K and V are two products of m16n8k16 tiles.
//
// A warp takes one work item: a decode row, one KV head, up to 16 of the q
// heads that share it (the mma's M rows; 8 when the group is at most 8, so
// rows g + 8 of the fragments are known zeros) and one partition of the row's
// keys. Its 16-key chunks are staged by cp.async into the warp's own shared
// memory, kStages deep, so the loads of the next chunks are in flight while
// one is computed (no block barrier: warps of a block are independent).
//
//   S = Q K^T   Q's A fragments stay in registers. QK^T sums over head dims,
//               so the dims may be permuted alike in Q and K: lane (g, t)
//               takes dims [t D/4, (t + 1) D/4) of key g for its B fragments
//               (one contiguous read), k-step s using dims 4s..4s+3 of them.
//   softmax     in registers on the m16n8 accumulator layout (rows g, g + 8).
//   O += P V    P is S's accumulators rounded to the products' type, reused as
//               A fragments. For V's B fragments lane (g, t) reads keys 2t,
//               2t + 1, 2t + 8, 2t + 9 (the k index the layout gives it) at dims
//               [g D/8, (g + 1) D/8), so n-tile n's column g is dim g D/8 + n;
//               byte (or half) permutes pair two keys' values of one dim. A
//               lane's output dims come out contiguous: [t D/4, (t + 1) D/4).
//
// E4M3 values widen exactly to fp16, the product type for E4M3 caches (q in
// fp16 has the range of any real model's activations: the scaled q is below
// 65504); 16-bit caches use their own type. Scores in the log2 domain (exp2),
// as the other attention kernels; a partition's (max, sum, unnormalized O) go
// to the same workspace layout, merged by merge_attention_partitions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <type_traits>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/cuda_mma.cuh"

namespace kiln::runtime::cuda {
namespace {

constexpr int kWarps = 4;  // independent warps per block
constexpr int kThreads = kWarps * 32;
constexpr int kChunk = 16;          // keys per staged chunk (the k of P V)
constexpr int kTargetWarps = 4096;  // work items a launch aims for (an H200 holds ~2100 warps of this kernel)
constexpr float kLog2e = 1.4426950408889634f;

template <typename C>
constexpr int stages() {
  return sizeof(C) == 1 ? 3 : 2;  // 16-bit rows are twice the bytes: two stages keep the same residency
}
template <typename C, int D>
constexpr int row_stride() {
  return D * static_cast<int>(sizeof(C)) + 16;  // bytes; +16 staggers rows across the banks
}
template <typename C, int D>
constexpr int stage_bytes() {
  return 2 * kChunk * row_stride<C, D>();  // K then V
}
template <typename C, int D>
constexpr std::size_t shared_bytes() {
  return std::size_t{kWarps} * stages<C>() * stage_bytes<C, D>();
}

// W consecutive 32-bit words of shared memory, in the widest loads their alignment allows.
template <int W>
__device__ __forceinline__ void load_words(const unsigned char* p, uint32_t (&w)[W]) {
  if constexpr (W % 4 == 0) {
#pragma unroll
    for (int i = 0; i < W; i += 4) {
      const uint4 v = *reinterpret_cast<const uint4*>(p + 4 * i);
      w[i] = v.x, w[i + 1] = v.y, w[i + 2] = v.z, w[i + 3] = v.w;
    }
  } else if constexpr (W % 2 == 0) {
#pragma unroll
    for (int i = 0; i < W; i += 2) {
      const uint2 v = *reinterpret_cast<const uint2*>(p + 4 * i);
      w[i] = v.x, w[i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < W; ++i) w[i] = *reinterpret_cast<const uint32_t*>(p + 4 * i);
  }
}

// T: the products' 16-bit type; C: the cache's (T, or E4M3); D: head_dim;
// GT: q heads per warp (8: fragment rows g only; 16: rows g and g + 8).
template <typename T, typename C, int D, int GT>
__global__ void __launch_bounds__(kThreads)
    decode_attention_mma_kernel(const float* __restrict__ qkv, AttentionShape shape, StepRows step,
                                const int32_t* __restrict__ row_list, const C* __restrict__ keys,
                                const C* __restrict__ values, int partition, int partitions, int tiles, int items,
                                float* __restrict__ out, float* __restrict__ workspace) {
  constexpr bool kFp8 = sizeof(C) == 1;
  constexpr int kStages = stages<C>();
  constexpr int RB = D * static_cast<int>(sizeof(C));  // bytes of a cached K or V row
  constexpr int RS = row_stride<C, D>();
  constexpr int kPieces = RB / 16;      // 16-byte copies per row
  constexpr int kSteps = D / 16;        // k-steps of Q K^T
  constexpr int kDimTiles = D / 8;      // n-tiles of O
  constexpr int KW = RB / 4 / 4;        // 32-bit words of a lane's K share (D/4 elements)
  constexpr int VW = (RB / 8 + 3) / 4;  // 32-bit words of a lane's V share (D/8 elements; D = 16 E4M3: 2 bytes)
  constexpr bool kTwoRows = GT > 8;
  static_assert(D % 16 == 0 && RB % 16 == 0, "whole 16-byte pieces per row");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int item = blockIdx.x * kWarps + warp;
  if (item >= items) return;
  unsigned char* stage0 = smem_raw + warp * kStages * stage_bytes<C, D>();

  const int part = item % partitions;
  const int rest = item / partitions;
  const int pair = rest % (shape.num_kv_heads * tiles), index = rest / (shape.num_kv_heads * tiles);
  const int kvh = pair / tiles, tile = pair % tiles;
  const int row = row_list ? row_list[index] : index;
  const int pos = step.positions[row];
  const int first = shape.sliding_window > 0 ? max(0, pos - shape.sliding_window + 1) : 0;
  const int begin = first + part * partition;
  if (begin > pos) return;  // past the row's keys: the merge reads no partial of it
  const int end = part == partitions - 1 ? pos + 1 : min(pos + 1, begin + partition);
  const bool single = part == 0 && end == pos + 1;

  const int group = shape.num_heads / shape.num_kv_heads;
  const int h0 = kvh * group + tile * GT;
  const int nh = min(GT, group - tile * GT);
  const int q_width = shape.num_heads * D, kv_width = shape.num_kv_heads * D;
  const int g = lane / 4, t = lane % 4;

  // Q's A fragments (rows g, g + 8: heads h0 + g, h0 + g + 8), pre-scaled into the log2 domain.
  const float q_scale = rsqrtf(static_cast<float>(D)) * kLog2e;
  const float* q_base = qkv + int64_t{row} * (q_width + 2 * kv_width) + int64_t{h0} * D + t * (D / 4);
  uint32_t qa[kSteps][4];
  float slope[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = g + 8 * i;
    slope[i] = shape.alibi && r < nh ? shape.alibi_slopes[h0 + r] * kLog2e : 0.f;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (r < nh && (i == 0 || kTwoRows)) x = *reinterpret_cast<const float4*>(q_base + int64_t{r} * D + 4 * s);
      const bool used = i == 0 || kTwoRows;                               // rows g + 8 are zeros at GT 8
      qa[s][i] = used ? pack2<T>(x.x * q_scale, x.y * q_scale) : 0u;      // logical k 2t, 2t + 1
      qa[s][i + 2] = used ? pack2<T>(x.z * q_scale, x.w * q_scale) : 0u;  // logical k 2t + 8, 2t + 9
    }
  }

  // Staging: lane l copies pieces l, l + 32, ... of the chunk's kChunk x kPieces (same slots for K and V).
  const int32_t* table = step.block_tables + step.table_offset[row];
  const int block_size = step.block_size;
  const int64_t head_offset = int64_t{kvh} * D;
  const int chunks = (end - begin + kChunk - 1) / kChunk;
  auto stage_chunk = [&](int c) {
    unsigned char* ks = stage0 + (c % kStages) * stage_bytes<C, D>();
    unsigned char* vs = ks + kChunk * RS;
    const int k0 = begin + c * kChunk;
#pragma unroll
    for (int i = lane; i < kChunk * kPieces; i += 32) {
      const int j = i / kPieces, piece = i % kPieces, k = k0 + j;
      const bool valid = k < end;
      const int64_t at = valid ? cache_slot(table, k, block_size) * kv_width + head_offset : head_offset;
      const auto* kp = reinterpret_cast<const unsigned char*>(keys + at) + piece * 16;
      const auto* vp = reinterpret_cast<const unsigned char*>(values + at) + piece * 16;
      cp_async16(ks + j * RS + piece * 16, kp, valid);
      cp_async16(vs + j * RS + piece * 16, vp, valid);
    }
  };
#pragma unroll
  for (int c = 0; c < kStages - 1; ++c) {
    if (c < chunks) stage_chunk(c);
    cp_async_commit();  // empty groups keep the wait count uniform
  }

  float o[kDimTiles][4];
#pragma unroll
  for (int n = 0; n < kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<kStages - 2>();  // this lane's copies of chunk c have landed
    __syncwarp();                  // and every lane's; chunk c - 1's stage is free again
    if (c + kStages - 1 < chunks) stage_chunk(c + kStages - 1);
    cp_async_commit();
    const unsigned char* ks = stage0 + (c % kStages) * stage_bytes<C, D>();
    const unsigned char* vs = ks + kChunk * RS;
    const int k0 = begin + c * kChunk;

    // S = Q K^T: n-tile n holds keys 8n..8n+7 (column g: key 8n + g).
    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
      uint32_t kw[KW];
      load_words<KW>(ks + (8 * n + g) * RS + t * (RB / 4), kw);
#pragma unroll
      for (int st = 0; st < kSteps; ++st) {
        uint32_t b0, b1;
        if constexpr (kFp8) {
          b0 = e4m3x2_to_half2(kw[st]);
          b1 = e4m3x2_to_half2(kw[st] >> 16);
        } else {
          b0 = kw[2 * st];
          b1 = kw[2 * st + 1];
        }
        mma_m16n8k16<T>(s[n], qa[st], b0, b1);
      }
    }

    // Masks, ALiBi and the online softmax of rows g (elements 0, 1) and g + 8 (2, 3).
    float top[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2, k = k0 + 8 * n + 2 * t + e % 2;
        s[n][e] = k < end ? fmaf(slope[i], static_cast<float>(k), s[n][e]) : -INFINITY;
        top[i] = fmaxf(top[i], s[n][e]);
      }
    }
    float correction[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 1));
      top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 2));
      const float new_max = fmaxf(row_max[i], top[i]);  // finite: key k0 is in the partition
      correction[i] = exp2f(row_max[i] - new_max);      // 0 before the first chunk
      row_max[i] = new_max;
      row_sum[i] *= correction[i];
    }
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(s[n][e] - row_max[e / 2]);  // 0 for masked keys
        s[n][e] = p;
        row_sum[e / 2] += p;
      }
    }
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      o[n][0] *= correction[0], o[n][1] *= correction[0];
      if constexpr (kTwoRows) o[n][2] *= correction[1], o[n][3] *= correction[1];
    }

    // O += P V over the chunk's 16 keys.
    const uint32_t pa[4] = {pack2<T>(s[0][0], s[0][1]), kTwoRows ? pack2<T>(s[0][2], s[0][3]) : 0u,
                            pack2<T>(s[1][0], s[1][1]), kTwoRows ? pack2<T>(s[1][2], s[1][3]) : 0u};
    uint32_t vw[4][VW];  // keys 2t, 2t + 1, 2t + 8, 2t + 9; dims [g D/8, (g + 1) D/8)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const unsigned char* p = vs + (2 * t + j % 2 + 8 * (j / 2)) * RS + g * (RB / 8);
      if constexpr (RB / 8 >= 4) {
        load_words<VW>(p, vw[j]);
      } else {  // two bytes (E4M3, D = 16)
        vw[j][0] = *reinterpret_cast<const uint16_t*>(p);
      }
    }
#pragma unroll
    for (int n = 0; n < kDimTiles; n += 2) {
      uint32_t b0[2], b1[2];  // n-tiles n and n + 1
      if constexpr (kFp8) {
        // Bytes n, n + 1 of keys (2t, 2t + 1) and of (2t + 8, 2t + 9), interleaved into value pairs.
        const int w = n / 4, sel = (n % 4) == 0 ? 0x5140 : 0x7362;
        const uint32_t lo = __byte_perm(vw[0][w], vw[1][w], sel), hi = __byte_perm(vw[2][w], vw[3][w], sel);
        b0[0] = e4m3x2_to_half2(lo), b0[1] = e4m3x2_to_half2(lo >> 16);
        b1[0] = e4m3x2_to_half2(hi), b1[1] = e4m3x2_to_half2(hi >> 16);
      } else {
        const int w = n / 2;  // halves n, n + 1 of each key's share
        b0[0] = __byte_perm(vw[0][w], vw[1][w], 0x5410), b0[1] = __byte_perm(vw[0][w], vw[1][w], 0x7632);
        b1[0] = __byte_perm(vw[2][w], vw[3][w], 0x5410), b1[1] = __byte_perm(vw[2][w], vw[3][w], 0x7632);
      }
      mma_m16n8k16<T>(o[n], pa, b0[0], b1[0]);
      mma_m16n8k16<T>(o[n + 1], pa, b0[1], b1[1]);
    }
  }
  cp_async_wait<0>();

  // Rows' sums over the quad; lane (g, t) holds dims t D/4 + n (element 0/2) and t D/4 + D/8 + n (1/3).
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row_sum[i] += __shfl_xor_sync(0xffffffffu, row_sum[i], 1);
    row_sum[i] += __shfl_xor_sync(0xffffffffu, row_sum[i], 2);
  }
  const int64_t at = (int64_t{index} * shape.num_heads + h0) * partitions + part;
  float* stats = workspace ? workspace + int64_t{shape.rows} * shape.num_heads * partitions * D : nullptr;
#pragma unroll
  for (int i = 0; i < (kTwoRows ? 2 : 1); ++i) {
    const int r = g + 8 * i;
    if (r >= nh) continue;
    float* dst;
    float scale = 1.f;
    if (single) {
      dst = out + int64_t{row} * q_width + int64_t{h0 + r} * D;
      scale = 1.f / row_sum[i];
    } else {  // [index][head][partition][D] partials, then (max, sum) per (index, head, partition)
      const int64_t here = at + int64_t{r} * partitions;
      dst = workspace + here * D;
      if (t == 0) stats[here * 2] = row_max[i], stats[here * 2 + 1] = row_sum[i];
    }
    dst += t * (D / 4);
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      dst[n] = o[n][2 * i] * scale;
      dst[D / 8 + n] = o[n][2 * i + 1] * scale;
    }
  }
}

struct Plan {
  int heads = 8;  // q heads per work item (the kernel's GT)
  int tiles = 1;  // work items per KV head
  int partition = 0, partitions = 1;
};

// A function of the shape alone, as the CUDA-core kernel's plan: one recorded launch serves every step.
Plan plan_for(const AttentionShape& shape) {
  Plan plan;
  const int group = shape.num_heads / shape.num_kv_heads;
  plan.heads = group <= 8 ? 8 : 16;
  plan.tiles = (group + plan.heads - 1) / plan.heads;
  const AttentionPartitions parts = attention_partitions(shape, int64_t{shape.num_kv_heads} * plan.tiles, kTargetWarps);
  plan.partition = parts.partition;
  plan.partitions = parts.partitions;
  return plan;
}

template <typename T, typename C, int D, int GT>
void launch(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
            const void* keys, const void* values, const Plan& plan, float* out, float* workspace, cudaStream_t stream) {
  constexpr std::size_t bytes = shared_bytes<C, D>();
  auto kernel = decode_attention_mma_kernel<T, C, D, GT>;
  static const bool raised =
      allow_shared_memory(kernel, bytes, "cudaFuncSetAttribute (decode attention, tensor cores)");
  (void)raised;
  const int64_t items = int64_t{shape.rows} * shape.num_kv_heads * plan.tiles * plan.partitions;
  if (items > int64_t{1} << 30) throw_error("the CUDA decode attention takes up to 2^30 work items, got ", items);
  kernel<<<blocks_for(items, kWarps), kThreads, bytes, stream>>>(
      qkv, shape, step, row_list, static_cast<const C*>(keys), static_cast<const C*>(values), plan.partition,
      plan.partitions, plan.tiles, static_cast<int>(items), out, workspace);
}

template <typename T, typename C>
void launch_for_dims(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                     const void* keys, const void* values, const Plan& plan, float* out, float* workspace,
                     cudaStream_t stream) {
  auto by_heads = [&](auto d) {
    constexpr int D = decltype(d)::value;
    plan.heads == 8 ? launch<T, C, D, 8>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream)
                    : launch<T, C, D, 16>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
  };
  switch (shape.head_dim) {
    case 16: by_heads(std::integral_constant<int, 16>{}); break;
    case 32: by_heads(std::integral_constant<int, 32>{}); break;
    case 64: by_heads(std::integral_constant<int, 64>{}); break;
    default: by_heads(std::integral_constant<int, 128>{}); break;
  }
}

}  // namespace

bool decode_attention_mma_supports(int head_dim, DType kv_dtype) {
  const bool dims = head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
  const bool cache = kv_dtype == DType::f8e4m3 || kv_dtype == DType::f16 || kv_dtype == DType::bf16;
  return dims && cache && tensor_cores_present();
}

AttentionPartitions decode_attention_mma_partitions(const AttentionShape& shape) {
  const Plan plan = plan_for(shape);
  return {plan.partition, plan.partitions};
}

void decode_attention_mma(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                          const void* keys, const void* values, DType kv_dtype, float* out, float* workspace,
                          cudaStream_t stream) {
  if (!decode_attention_mma_supports(shape.head_dim, kv_dtype)) {
    throw_error("internal: tensor-core decode attention takes E4M3 or 16-bit KV and head_dim 16, 32, 64 or 128");
  }
  if (shape.rows == 0) return;
  const Plan plan = plan_for(shape);
  if (plan.partitions > 1 && !workspace) throw_error("internal: the CUDA attention needs its workspace for this shape");
  switch (kv_dtype) {
    case DType::f8e4m3:
      launch_for_dims<__half, __nv_fp8_e4m3>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
      break;
    case DType::f16:
      launch_for_dims<__half, __half>(qkv, shape, step, row_list, keys, values, plan, out, workspace, stream);
      break;
    default:
      launch_for_dims<__nv_bfloat16, __nv_bfloat16>(qkv, shape, step, row_list, keys, values, plan, out, workspace,
                                                    stream);
      break;
  }
  check_launch("decode attention (tensor cores)");
  if (plan.partitions > 1) {
    merge_attention_partitions(shape, step, row_list, plan.partition, plan.partitions, workspace, out, stream);
  }
}

}  // namespace kiln::runtime::cuda
