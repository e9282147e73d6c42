// Prefill attention: many query rows of one sequence against its cached keys,
// flash-style. A block takes one head and a tile of up to 64 consecutive query
// rows; it walks the sequence's keys in tiles of 64, staged (as fp32) in
// shared memory from the paged cache, keeping each row's online softmax (max,
// sum) and output accumulator in registers, so scores never reach device
// memory. Causal masking, sliding windows, ALiBi and grouped KV heads as in
// the decode kernel. Thread (r, c) of 256 owns query row r = tid / 4: keys
// c, c+4, ... of each key tile for the scores, dims c, c+4, ... of the output.
#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kTile = kPrefillTile;  // query rows and keys per tile
constexpr int kThreads = 256;        // 4 per query row

template <int D>
constexpr std::size_t shared_bytes() {
  return (3 * kTile * (D + 1) + kTile * (kTile + 1)) * sizeof(float);
}

template <typename KV, int D>
__global__ void __launch_bounds__(kThreads)
    prefill_attention_kernel(const float* qkv, AttentionShape shape, StepRows step, const QueryTile* tiles,
                             const KV* keys, const KV* values, float* out) {
  constexpr int S = D + 1;  // padded rows: the 4 threads of a row, and 8 rows of a warp, hit distinct banks
  constexpr int kKeysPerThread = kTile / 4;
  constexpr int kDimsPerThread = D / 4;
  extern __shared__ float smem[];
  float* qs = smem;            // [kTile][S], pre-scaled
  float* ks = qs + kTile * S;  // [kTile][S]
  float* vs = ks + kTile * S;  // [kTile][S]
  float* ps = vs + kTile * S;  // [kTile][kTile + 1]
  const int h = blockIdx.x;
  const QueryTile tile = tiles[blockIdx.y];
  const int tid = threadIdx.x, r = tid / 4, c = tid % 4;
  const int Dh = shape.head_dim;
  const int q_width = shape.num_heads * Dh, kv_width = shape.num_kv_heads * Dh;
  const int64_t width = q_width + 2 * kv_width;
  const int kvh = h / (shape.num_heads / shape.num_kv_heads);
  const float scale = rsqrtf(static_cast<float>(Dh));
  const float slope = shape.alibi ? shape.alibi_slopes[h] : 0.f;

  for (int i = tid; i < kTile * D; i += kThreads) {
    const int rr = i / D, d = i % D;
    qs[rr * S + d] = rr < tile.rows && d < Dh ? qkv[(tile.first_row + rr) * width + h * Dh + d] * scale : 0.f;
  }
  const int row = tile.first_row + min(r, tile.rows - 1);
  const int pos = step.positions[row];
  const int first_pos = step.positions[tile.first_row];
  const int last_pos = step.positions[tile.first_row + tile.rows - 1];
  const int window = shape.sliding_window;
  const int key_begin = window > 0 ? max(0, first_pos - window + 1) : 0;
  const int lowest_key = window > 0 ? pos - window + 1 : 0;
  const int32_t* table = step.block_tables + step.table_offset[tile.first_row];

  float acc[kDimsPerThread];
#pragma unroll
  for (int i = 0; i < kDimsPerThread; ++i) acc[i] = 0.f;
  float row_max = -INFINITY, row_sum = 0.f;
  for (int k0 = key_begin; k0 <= last_pos; k0 += kTile) {
    __syncthreads();  // the last tile's keys, values and probabilities are consumed (and q is stored)
    for (int i = tid; i < kTile * D; i += kThreads) {
      const int j = i / D, d = i % D, k = k0 + j;
      float kf = 0.f, vf = 0.f;
      if (k <= last_pos && d < Dh) {
        const int64_t base = cache_slot(table, k, step.block_size) * kv_width + kvh * Dh + d;
        kf = to_float(keys[base]);
        vf = to_float(values[base]);
      }
      ks[j * S + d] = kf;
      vs[j * S + d] = vf;
    }
    __syncthreads();
    float s[kKeysPerThread];
#pragma unroll
    for (int t = 0; t < kKeysPerThread; ++t) s[t] = 0.f;
#pragma unroll 4
    for (int d = 0; d < D; ++d) {
      const float q = qs[r * S + d];
#pragma unroll
      for (int t = 0; t < kKeysPerThread; ++t) s[t] = fmaf(q, ks[(c + 4 * t) * S + d], s[t]);
    }
    float tile_max = -INFINITY;
#pragma unroll
    for (int t = 0; t < kKeysPerThread; ++t) {
      const int k = k0 + c + 4 * t;
      s[t] = k <= pos && k >= lowest_key ? s[t] + slope * static_cast<float>(k) : -INFINITY;
      tile_max = fmaxf(tile_max, s[t]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float new_max = fmaxf(row_max, tile_max);
    // A row may see no key of this tile yet (sliding window): nothing to rescale.
    const float correction = new_max == -INFINITY ? 1.f : expf(row_max - new_max);
    float tile_sum = 0.f;
#pragma unroll
    for (int t = 0; t < kKeysPerThread; ++t) {
      const float p = s[t] == -INFINITY ? 0.f : expf(s[t] - new_max);
      ps[r * (kTile + 1) + c + 4 * t] = p;
      tile_sum += p;
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 2);
    row_sum = row_sum * correction + tile_sum;
    row_max = new_max;
    __syncwarp();  // the row's probabilities come from the 4 lanes beside it
#pragma unroll
    for (int i = 0; i < kDimsPerThread; ++i) acc[i] *= correction;
#pragma unroll 4
    for (int j = 0; j < kTile; ++j) {
      const float p = ps[r * (kTile + 1) + j];
#pragma unroll
      for (int i = 0; i < kDimsPerThread; ++i) acc[i] = fmaf(p, vs[j * S + c + 4 * i], acc[i]);
    }
  }
  if (r >= tile.rows) return;
  float* o = out + int64_t{row} * q_width + h * Dh;
#pragma unroll
  for (int i = 0; i < kDimsPerThread; ++i) {
    const int d = c + 4 * i;
    if (d < Dh) o[d] = acc[i] / row_sum;
  }
}

template <typename KV, int D>
void launch(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles, int num_tiles,
            const KV* keys, const KV* values, float* out, cudaStream_t stream) {
  constexpr std::size_t bytes = shared_bytes<D>();
  static const bool raised =
      allow_shared_memory(prefill_attention_kernel<KV, D>, bytes, "cudaFuncSetAttribute (prefill attention)");
  (void)raised;
  const dim3 grid(static_cast<unsigned>(shape.num_heads), static_cast<unsigned>(num_tiles));
  prefill_attention_kernel<KV, D><<<grid, kThreads, bytes, stream>>>(qkv, shape, step, tiles, keys, values, out);
}

}  // namespace

bool prefill_attention_supports(int head_dim) { return head_dim <= kPrefillMaxHeadDim; }

void prefill_attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles,
                       int num_tiles, const void* keys, const void* values, DType kv_dtype, float* out,
                       cudaStream_t stream) {
  if (!prefill_attention_supports(shape.head_dim)) throw_error("internal: prefill attention takes head_dim <= 128");
  if (shape.alibi && shape.num_heads > kMaxAlibiHeads) throw_error("internal: too many ALiBi heads");
  dispatch_stored_dtype(kv_dtype, [&](auto t) {
    using T = decltype(t);
    const T* k = static_cast<const T*>(keys);
    const T* v = static_cast<const T*>(values);
    if (shape.head_dim <= 64) {
      launch<T, 64>(qkv, shape, step, tiles, num_tiles, k, v, out, stream);
    } else {
      launch<T, 128>(qkv, shape, step, tiles, num_tiles, k, v, out, stream);
    }
  });
  check_launch("prefill_attention");
}

}  // namespace kiln::runtime::cuda
