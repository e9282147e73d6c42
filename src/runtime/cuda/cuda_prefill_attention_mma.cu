// Prefill attention on tensor cores, for 16-bit KV caches (fp16 and bf16
// engines) and E4M3 ones (widened exactly to the engine's 16-bit type as
// they are staged): the flash-attention-2 scheme with mma.sync.m16n8k16 (sm_80+).
//
// A block of 4 warps takes one q head and a tile of up to 64 consecutive
// query rows of one sequence; warp w owns rows 16w..16w+15. Per tile of 64
// keys, staged from the paged cache into shared memory (K as [key][dim], V
// transposed as [dim][key], so every operand fragment is one 32-bit load):
//   S = Q K^T   Q's fragments stay in registers for the whole walk;
//   softmax     in registers: the m16n8 accumulator layout is documented, so
//               each thread knows its two rows (g and g + 8 of its warp's 16)
//               and the row max and sum need two shuffles within a quad;
//   O += P V    P is S's accumulators rounded to 16 bits, reused in place as
//               the A fragments of the second product (no shared-memory trip).
// fp32 accumulation and softmax state; scores in fp32 scaled by 1/sqrt(D) and
// log2(e) (exp2). Causal masking, sliding windows, ALiBi and grouped KV heads
// as in the other attention kernels. The CUDA-core kernel beside it keeps fp32
// KV caches and head sizes this one does not take.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/cuda_mma.cuh"

namespace kiln::runtime::cuda {
namespace {

constexpr int kRows = 64;  // query rows per block (4 warps x 16)
constexpr int kKeys = 64;  // keys per tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
static_assert(kRows == kThreads / 32 * 16 && kRows == kPrefillTile, "a query tile is one block's rows");

template <int D>
constexpr int kStride = D + 8;  // halves per staged K row / V^T row: rows start 16 bytes apart in banks
template <int D>
constexpr std::size_t shared_bytes() {
  return (kKeys * kStride<D> + D * (kKeys + 8)) * 2;
}

// Eight cached values from `p` as T, in one uint4: a 16-byte load of a 16-bit
// cache, or an 8-byte load of an E4M3 one widened (exactly) to T.
template <typename T, typename C>
__device__ __forceinline__ uint4 load8_as(const C* p) {
  if constexpr (std::is_same_v<T, C>) {
    return *reinterpret_cast<const uint4*>(p);
  } else {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const uint32_t words[2] = {raw.x, raw.y};
    uint4 wide;
    uint32_t* out = &wide.x;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = e4m3x2_to_float2(words[i / 2] >> (16 * (i % 2)));
      out[i] = pack2<T>(f.x, f.y);
    }
    return wide;
  }
}

// T: the 16-bit type of the products; C: the cache's (T, or E4M3).
template <typename T, typename C, int D>
__global__ void __launch_bounds__(kThreads)
    prefill_attention_mma_kernel(const float* qkv, AttentionShape shape, StepRows step, const QueryTile* tiles,
                                 const C* keys, const C* values, float* out) {
  constexpr int KS = kStride<D>;        // K row stride (halves)
  constexpr int VS = kKeys + 8;         // V^T row stride (halves)
  constexpr int kDSteps = D / 16;       // k-steps of Q K^T
  constexpr int kKeyTiles = kKeys / 8;  // n8 tiles of S
  constexpr int kDimTiles = D / 8;      // n8 tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw);  // [kKeys][KS]
  T* vt = ks + kKeys * KS;                 // [D][VS]

  const int h = blockIdx.x;
  const QueryTile tile = tiles[blockIdx.y];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;  // the mma fragment's row group and thread in group
  const int Dh = shape.head_dim;
  const int q_width = shape.num_heads * Dh, kv_width = shape.num_kv_heads * Dh;
  const int64_t width = q_width + 2 * kv_width;
  const int kvh = h / (shape.num_heads / shape.num_kv_heads);
  const float scale2 = rsqrtf(static_cast<float>(Dh)) * kLog2e;
  const float slope2 = shape.alibi ? shape.alibi_slopes[h] * kLog2e : 0.f;

  // This thread's two query rows (clamped into the tile; extra rows are not written).
  int rows[2], pos[2], lowest[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = min(warp * 16 + g + 8 * i, tile.rows - 1);
    rows[i] = tile.first_row + r;
    pos[i] = step.positions[rows[i]];
    lowest[i] = shape.sliding_window > 0 ? pos[i] - shape.sliding_window + 1 : 0;
  }
  // Q's A fragments, straight from the fp32 qkv rows.
  uint32_t qa[kDSteps][4];
#pragma unroll
  for (int s = 0; s < kDSteps; ++s) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = rows[j % 2], d = s * 16 + 2 * t + 8 * (j / 2);
      const float* q = qkv + int64_t{row} * width + h * Dh + d;
      qa[s][j] = pack2<T>(d < Dh ? q[0] : 0.f, d + 1 < Dh ? q[1] : 0.f);
    }
  }

  const int first_pos = step.positions[tile.first_row];
  const int last_pos = step.positions[tile.first_row + tile.rows - 1];
  const int key_begin = shape.sliding_window > 0 ? max(0, first_pos - shape.sliding_window + 1) : 0;
  const int32_t* table = step.block_tables + step.table_offset[tile.first_row];

  float o[kDimTiles][4];
#pragma unroll
  for (int n = 0; n < kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

  constexpr int kChunks = D / 8;  // 16-byte chunks per key row
  for (int k0 = key_begin; k0 <= last_pos; k0 += kKeys) {
    __syncthreads();  // the last tile is consumed
    // Consecutive threads take consecutive keys: V^T's 16-bit stores then
    // fill consecutive words (no bank conflicts).
    for (int i = tid; i < kKeys * kChunks; i += kThreads) {
      const int j = i % kKeys, d = (i / kKeys) * 8, k = k0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (k <= last_pos && d < Dh) {
        const int64_t base = cache_slot(table, k, step.block_size) * kv_width + int64_t{kvh} * Dh + d;
        kv = load8_as<T>(keys + base);
        vv = load8_as<T>(values + base);
      }
      *reinterpret_cast<uint4*>(ks + j * KS + d) = kv;
      const T* v8 = reinterpret_cast<const T*>(&vv);
#pragma unroll
      for (int e = 0; e < 8; ++e) vt[(d + e) * VS + j] = v8[e];
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[kKeyTiles][4];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
      const T* krow = ks + (n * 8 + g) * KS + 2 * t;
#pragma unroll
      for (int st = 0; st < kDSteps; ++st) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + st * 16);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + st * 16 + 8);
        mma_m16n8k16<T>(s[n], qa[st], b0, b1);
      }
    }
    // Masks, ALiBi, and the online softmax of rows g (elements 0, 1) and g + 8 (2, 3).
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2, k = k0 + n * 8 + 2 * t + e % 2;
        const bool visible = k <= pos[i] && k >= lowest[i];
        s[n][e] = visible ? s[n][e] * scale2 + slope2 * static_cast<float>(k) : -INFINITY;
        tile_max[i] = fmaxf(tile_max[i], s[n][e]);
      }
    }
    float correction[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 1));
      tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 2));
      const float new_max = fmaxf(row_max[i], tile_max[i]);
      // A row may see no key of this tile yet (sliding window): nothing to rescale.
      correction[i] = new_max == -INFINITY ? 1.f : exp2f(row_max[i] - new_max);
      row_max[i] = new_max;
    }
    float tile_sum[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2;
        const float p = s[n][e] == -INFINITY ? 0.f : exp2f(s[n][e] - row_max[i]);
        s[n][e] = p;
        tile_sum[i] += p;
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      tile_sum[i] += __shfl_xor_sync(0xffffffffu, tile_sum[i], 1);
      tile_sum[i] += __shfl_xor_sync(0xffffffffu, tile_sum[i], 2);
      row_sum[i] = row_sum[i] * correction[i] + tile_sum[i];
    }
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      o[n][0] *= correction[0], o[n][1] *= correction[0];
      o[n][2] *= correction[1], o[n][3] *= correction[1];
    }
    // O += P V: P's A fragments are S's accumulators (keys 16kt.. of n-tiles 2kt and 2kt + 1).
#pragma unroll
    for (int kt = 0; kt < kKeys / 16; ++kt) {
      const uint32_t pa[4] = {pack2<T>(s[2 * kt][0], s[2 * kt][1]), pack2<T>(s[2 * kt][2], s[2 * kt][3]),
                              pack2<T>(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                              pack2<T>(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int n = 0; n < kDimTiles; ++n) {
        const T* vrow = vt + (n * 8 + g) * VS + kt * 16 + 2 * t;
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(vrow);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(vrow + 8);
        mma_m16n8k16<T>(o[n], pa, b0, b1);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (warp * 16 + g + 8 * i >= tile.rows) continue;
    float* dst = out + int64_t{rows[i]} * q_width + h * Dh;
    const float inv = 1.f / row_sum[i];
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      const int d = n * 8 + 2 * t;
      if (d < Dh) dst[d] = o[n][2 * i] * inv;
      if (d + 1 < Dh) dst[d + 1] = o[n][2 * i + 1] * inv;
    }
  }
}

template <typename T, typename C, int D>
void launch(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles, int num_tiles,
            const C* keys, const C* values, float* out, cudaStream_t stream) {
  constexpr std::size_t bytes = shared_bytes<D>();
  static const bool raised = allow_shared_memory(prefill_attention_mma_kernel<T, C, D>, bytes,
                                                 "cudaFuncSetAttribute (prefill attention, tensor cores)");
  (void)raised;
  const dim3 grid(static_cast<unsigned>(shape.num_heads), static_cast<unsigned>(num_tiles));
  prefill_attention_mma_kernel<T, C, D><<<grid, kThreads, bytes, stream>>>(qkv, shape, step, tiles, keys, values, out);
}

}  // namespace

bool prefill_attention_mma_supports(int head_dim, DType kv_dtype, DType compute_dtype) {
  const bool sixteen = compute_dtype == DType::f16 || compute_dtype == DType::bf16;
  return sixteen && (kv_dtype == compute_dtype || kv_dtype == DType::f8e4m3) && head_dim % 8 == 0 && head_dim <= 128 &&
         tensor_cores_present();
}

void prefill_attention_mma(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles,
                           int num_tiles, const void* keys, const void* values, DType kv_dtype, DType compute_dtype,
                           float* out, cudaStream_t stream) {
  if (!prefill_attention_mma_supports(shape.head_dim, kv_dtype, compute_dtype)) {
    throw_error("internal: tensor-core prefill attention takes 16-bit or E4M3 KV and head_dim % 8 == 0, <= 128");
  }
  auto run = [&](auto t, auto c) {
    using T = decltype(t);
    using C = decltype(c);
    const C* k = static_cast<const C*>(keys);
    const C* v = static_cast<const C*>(values);
    if (shape.head_dim <= 64) {
      launch<T, C, 64>(qkv, shape, step, tiles, num_tiles, k, v, out, stream);
    } else {
      launch<T, C, 128>(qkv, shape, step, tiles, num_tiles, k, v, out, stream);
    }
  };
  const bool fp8 = kv_dtype == DType::f8e4m3;
  if (compute_dtype == DType::f16) {
    fp8 ? run(__half{}, __nv_fp8_e4m3{}) : run(__half{}, __half{});
  } else {
    fp8 ? run(__nv_bfloat16{}, __nv_fp8_e4m3{}) : run(__nv_bfloat16{}, __nv_bfloat16{});
  }
  check_launch("prefill_attention_mma");
}

}  // namespace kiln::runtime::cuda
