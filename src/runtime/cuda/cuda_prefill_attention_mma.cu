// Prefill attention on tensor cores, for 16-bit KV caches (fp16 and bf16
// engines) and E4M3 ones (widened exactly to the engine's 16-bit type as
// they are staged): the flash-attention-2 scheme with mma.sync.m16n8k16 (sm_80+).
//
// A block of 4 warps takes one q head and a tile of up to 64 consecutive
// query rows of one sequence; warp w owns rows 16w..16w+15. Keys are walked
// in tiles of 64, each copied from the paged cache into shared memory by
// cp.async while the block computes on the tile before (16-bit caches: two
// K/V stages; E4M3: the raw bytes double-buffered, widened into one 16-bit
// K/V stage by the threads that copied them). K and V both stay [key][dim]
// as the cache holds them; ldmatrix gives S's B fragments from K and
// ldmatrix.trans O's from V (no transposing stores).
//   S = Q K^T   Q's fragments stay in registers for the whole walk;
//   softmax     in registers: the m16n8 accumulator layout is documented, so
//               each thread knows its two rows (g and g + 8 of its warp's 16)
//               and the row max and sum need two shuffles within a quad;
//   O += P V    P is S's accumulators rounded to 16 bits, reused in place as
//               the A fragments of the second product (no shared-memory trip).
// fp32 accumulation and softmax state; scores in fp32 scaled by 1/sqrt(D) and
// log2(e) (exp2). Causal masking, sliding windows, ALiBi and grouped KV heads
// as in the other attention kernels; tiles wholly inside every row's window
// skip the mask. Blocks take query tiles last first: under a causal mask the
// last tiles walk the most keys, and starting them first keeps them off the
// grid's tail. The CUDA-core kernel beside it keeps fp32 KV caches and head
// sizes this one does not take.
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
// Two blocks a multiprocessor (up to 255 registers a thread) measured 1.15x
// faster than three (168 registers, a few spilled at D = 128) on the H200.
constexpr int kBlocksPerSM = 2;
constexpr float kLog2e = 1.4426950408889634f;
static_assert(kRows == kThreads / 32 * 16 && kRows == kPrefillTile, "a query tile is one block's rows");

// Shared memory of one head size D and cache type C, in bytes.
template <typename C, int D>
struct Staging {
  static constexpr bool kWiden = sizeof(C) == 1;  // E4M3 cache widened to 16 bits in shared memory
  static constexpr int kRow = D + 8;              // 16-bit elements per staged row: rows 16 bytes apart in banks
  static constexpr int kTile = kKeys * kRow * 2;  // one K or V tile of 16-bit values
  static constexpr int kWideStages = kWiden ? 1 : 2;
  static constexpr int kRawRow = D + 16;  // bytes per raw E4M3 row
  static constexpr int kRawTile = kKeys * kRawRow;
  static constexpr int kRawStages = kWiden ? 2 : 0;
  static constexpr std::size_t kBytes = std::size_t{kWideStages} * 2 * kTile + std::size_t{kRawStages} * 2 * kRawTile;
  static constexpr int kChunksPerRow = D / 8;  // a cp.async chunk is 8 cache values (16 or 8 bytes)
  static constexpr int kChunksPerThread = kKeys * kChunksPerRow / kThreads;
  static_assert(kKeys * kChunksPerRow % kThreads == 0, "every thread copies the same number of chunks");
};

// Eight E4M3 values (one 8-byte word pair) widened exactly to T.
template <typename T>
__device__ __forceinline__ uint4 widen8(uint2 raw) {
  const uint32_t words[2] = {raw.x, raw.y};
  uint4 wide;
  uint32_t* out = &wide.x;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t pair = words[i / 2] >> (16 * (i % 2));
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = e4m3x2_to_half2(pair);
    } else {
      const float2 f = e4m3x2_to_float2(pair);
      out[i] = pack2<T>(f.x, f.y);
    }
  }
  return wide;
}

// T: the 16-bit type of the products; C: the cache's (T, or E4M3).
template <typename T, typename C, int D>
__global__ void __launch_bounds__(kThreads, kBlocksPerSM)
    prefill_attention_mma_kernel(const float* qkv, AttentionShape shape, StepRows step, const QueryTile* tiles,
                                 const C* keys, const C* values, float* out) {
  using S = Staging<C, D>;
  constexpr int RS = S::kRow;
  constexpr int kDSteps = D / 16;       // k-steps of Q K^T
  constexpr int kKeyTiles = kKeys / 8;  // n8 tiles of S
  constexpr int kDimTiles = D / 8;      // n8 tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // 16-bit stages [stage][K | V][key][RS]; then, for E4M3 caches, raw stages [stage][K | V][key][kRawRow].
  // Shared-space byte addresses (cp.async and ldmatrix take them) and generic pointers (the widening pass).
  const auto smem = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  constexpr int kRawBase = S::kWideStages * 2 * S::kTile;
  auto wide_at = [&](int stage, int kv) { return smem + (stage * 2 + kv) * S::kTile; };
  auto raw_at = [&](int stage, int kv) { return smem + kRawBase + (stage * 2 + kv) * S::kRawTile; };

  const int h = blockIdx.x;
  const QueryTile tile = tiles[gridDim.y - 1 - blockIdx.y];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;  // the mma fragment's row group and thread in group
  const int Dh = shape.head_dim;
  const int q_width = shape.num_heads * Dh, kv_width = shape.num_kv_heads * Dh;
  const int64_t width = q_width + 2 * kv_width;
  const int kvh = h / (shape.num_heads / shape.num_kv_heads);
  const float scale2 = rsqrtf(static_cast<float>(Dh)) * kLog2e;
  const bool alibi = shape.alibi;
  const float slope2 = alibi ? shape.alibi_slopes[h] * kLog2e : 0.f;
  const float score_scale = alibi ? 1.f : scale2;  // what the softmax still multiplies raw scores by

  const int first_pos = step.positions[tile.first_row];
  const int last_pos = step.positions[tile.first_row + tile.rows - 1];
  const int window = shape.sliding_window;
  const int key_begin = window > 0 ? max(0, first_pos - window + 1) : 0;
  const SlotFinder slot_of(step.block_tables + step.table_offset[tile.first_row], step.block_size);

  // Copies the 64 keys from k0 into stage `stage` (the raw stage for E4M3).
  // Consecutive threads take consecutive 8-value chunks of one key row.
  // Per thread, every chunk has the same dims (d) and keys kRowsPerPass apart.
  constexpr int kRowsPerPass = kThreads / S::kChunksPerRow;
  const int first_key = tid / S::kChunksPerRow, d = (tid % S::kChunksPerRow) * 8;
  const bool dims_valid = d < Dh;
  // Past the head's dims the address stays inside its row (src-size 0 reads nothing there anyway).
  const int col = kvh * Dh + min(d, Dh - 8);
  const int stage_at = S::kWiden ? first_key * S::kRawRow + d : (first_key * RS + d) * 2;
  auto issue = [&](int k0, int stage) {
#pragma unroll
    for (int c = 0; c < S::kChunksPerThread; ++c) {
      const int k = k0 + first_key + c * kRowsPerPass;
      const bool valid = dims_valid && k <= last_pos;
      const int64_t at = int64_t{slot_of(min(k, last_pos))} * kv_width + col;  // keys past the end read as 0
      if constexpr (S::kWiden) {
        const uint32_t dst = raw_at(stage, 0) + stage_at + c * kRowsPerPass * S::kRawRow;
        cp_async8(dst, keys + at, valid);
        cp_async8(dst + S::kRawTile, values + at, valid);
      } else {
        const uint32_t dst = wide_at(stage, 0) + stage_at + c * kRowsPerPass * RS * 2;
        cp_async16(dst, keys + at, valid);
        cp_async16(dst + S::kTile, values + at, valid);
      }
    }
    cp_async_commit();
  };
  // E4M3: widens this thread's own chunks of raw stage `stage` (visible to it after its wait).
  auto widen = [&](int stage) {
    const unsigned char* raw = smem_raw + kRawBase + stage * 2 * S::kRawTile + first_key * S::kRawRow + d;
    unsigned char* wide = smem_raw + (first_key * RS + d) * 2;
#pragma unroll
    for (int c = 0; c < S::kChunksPerThread; ++c) {
#pragma unroll
      for (int kv = 0; kv < 2; ++kv) {
        const uint2 r = *reinterpret_cast<const uint2*>(raw + kv * S::kRawTile + c * kRowsPerPass * S::kRawRow);
        *reinterpret_cast<uint4*>(wide + kv * S::kTile + c * kRowsPerPass * RS * 2) = widen8<T>(r);
      }
    }
  };

  issue(key_begin, 0);  // the first tile's copies overlap loading Q

  // This thread's two query rows (clamped into the tile; extra rows are not written).
  int rows[2], pos[2], lowest[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = min(warp * 16 + g + 8 * i, tile.rows - 1);
    rows[i] = tile.first_row + r;
    pos[i] = step.positions[rows[i]];
    lowest[i] = window > 0 ? pos[i] - window + 1 : 0;
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

  float o[kDimTiles][4];
#pragma unroll
  for (int n = 0; n < kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

  // ldmatrix row addresses: lane l names row l % 8 of matrix l / 8.
  const int mat = lane / 8, mrow = lane % 8;
  // This lane's row within the K tile's x4 (matrix m: dims +8m) and the V tile's (keys +8(m%2), dims +8(m/2)).
  const int k_lane = (mrow * RS + mat * 8) * 2, v_lane = (((mat % 2) * 8 + mrow) * RS + (mat / 2) * 8) * 2;
  int stage = 0;
  for (int k0 = key_begin; k0 <= last_pos; k0 += kKeys) {
    // The next tile's copies go to the stage the previous iteration finished
    // with; then this thread's copies of this tile are waited for.
    if (k0 + kKeys <= last_pos) {
      issue(k0 + kKeys, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    if constexpr (S::kWiden) widen(stage);
    __syncthreads();  // this tile is staged by every thread
    const uint32_t ks = wide_at(S::kWiden ? 0 : stage, 0) + k_lane;
    const uint32_t vs = wide_at(S::kWiden ? 0 : stage, 1) + v_lane;

    // S = Q K^T for this warp's 16 rows x 64 keys; one ldmatrix.x4 gives two k-steps' B fragments.
    float s[kKeyTiles][4];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int st = 0; st < kDSteps; st += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, ks + ((n * 8) * RS + st * 16) * 2);
        mma_m16n8k16<T>(s[n], qa[st], b[0], b[1]);
        mma_m16n8k16<T>(s[n], qa[st + 1], b[2], b[3]);
      }
    }
    // Masks (only where some key of the tile is outside some row's window) and
    // ALiBi on the raw scores; the scale 1/sqrt(D) * log2(e) is folded into
    // exp2's argument (one FMA an element) unless ALiBi's bias needs it first.
    // Row g's elements are 0 and 1, row g + 8's 2 and 3.
    const bool masked = k0 + kKeys - 1 > first_pos || (window > 0 && k0 < last_pos - window + 1);
    if (masked || alibi) {
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = e / 2, k = k0 + n * 8 + 2 * t + e % 2;
          const float v = alibi ? s[n][e] * scale2 + slope2 * static_cast<float>(k) : s[n][e];
          s[n][e] = !masked || (k <= pos[i] && k >= lowest[i]) ? v : -INFINITY;
        }
      }
    }
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
      tile_max[0] = fmaxf(tile_max[0], fmaxf(s[n][0], s[n][1]));
      tile_max[1] = fmaxf(tile_max[1], fmaxf(s[n][2], s[n][3]));
    }
    float correction[2], shift[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 1));
      tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 2));
      const float new_max = fmaxf(row_max[i], tile_max[i]);
      // A row may see no key yet (sliding window): nothing to rescale, and a
      // finite shift keeps exp2(-inf - shift) = 0 rather than NaN.
      correction[i] = new_max == -INFINITY ? 1.f : exp2_approx((row_max[i] - new_max) * score_scale);
      shift[i] = new_max == -INFINITY ? 0.f : new_max * score_scale;
      row_max[i] = new_max;
    }
    float tile_sum[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e / 2;
        const float p = exp2_approx(fmaf(s[n][e], score_scale, -shift[i]));
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
    // O += P V: P's A fragments are S's accumulators (keys 16kt.. of n-tiles 2kt and 2kt + 1);
    // one ldmatrix.x4.trans gives the B fragments of two dim tiles (matrix m: keys +8(m%2), dims +8(m/2)).
#pragma unroll
    for (int kt = 0; kt < kKeys / 16; ++kt) {
      const uint32_t pa[4] = {pack2<T>(s[2 * kt][0], s[2 * kt][1]), pack2<T>(s[2 * kt][2], s[2 * kt][3]),
                              pack2<T>(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                              pack2<T>(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int n = 0; n < kDimTiles; n += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vs + ((kt * 16) * RS + n * 8) * 2);
        mma_m16n8k16<T>(o[n], pa, b[0], b[1]);
        mma_m16n8k16<T>(o[n + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled (or rewidened)
    stage ^= 1;
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
  constexpr std::size_t bytes = Staging<C, D>::kBytes;
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
