// rope_kv_write: rotary embeddings applied to one layer's q and k heads of
// each step row, q in place in the qkv rows, k and v stored at the row's slot
// in the paged cache (the block table entry of its position), in the cache's
// dtype. A pass over 4 bytes of every q, k and v value: the step's qkv is
// read once and its q written back, so at prompt sizes this runs at the
// memory's rate only when each thread moves enough of it: where the rotation
// is neox-style over whole heads (Llama, Mistral, Qwen, ...) a thread takes 4
// rotation pairs (or 4 v values) in 16-byte loads; other layouts (GPT-J's
// interleaved pairs, partial rotary dims) take a pair or a value a thread.
#include <cstdint>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

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

// Four values rounded to KV and stored together (p is 4-element aligned).
template <typename KV>
__device__ __forceinline__ void store4(KV* p, float4 v) {
  if constexpr (std::is_same_v<KV, float>) {
    *reinterpret_cast<float4*>(p) = v;
  } else if constexpr (std::is_same_v<KV, __nv_fp8_e4m3>) {
    const __nv_fp8x2_storage_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v.x, v.y), __NV_SATFINITE, __NV_E4M3);
    const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v.z, v.w), __NV_SATFINITE, __NV_E4M3);
    *reinterpret_cast<uint32_t*>(p) = uint32_t{lo} | (uint32_t{hi} << 16);
  } else {
    const KV e[4] = {from_float<KV>(v.x), from_float<KV>(v.y), from_float<KV>(v.z), from_float<KV>(v.w)};
    *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(e);
  }
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// Neox-style rotation over whole heads (2 x half == head_dim, half % 4 == 0):
// work items of one row are 4 rotation pairs of a q head, of a k head, or 4
// v values, all 16-byte aligned.
template <typename KV>
__global__ void rope_kv_write4_kernel(float* qkv, AttentionShape shape, StepRows step, Rotary rotary, KV* keys,
                                      KV* values) {
  const int row = blockIdx.y;
  const int D = shape.head_dim, half = rotary.half, hq = shape.num_heads, hk = shape.num_kv_heads;
  const int q_width = hq * D, kv_width = hk * D, quads = half / 4;
  const int rotated = (hq + hk) * quads;
  const int item = blockIdx.x * blockDim.x + threadIdx.x;
  if (item >= rotated + kv_width / 4) return;
  float* x = qkv + int64_t{row} * (q_width + 2 * kv_width);
  const int pos = step.positions[row];
  const int64_t at = slot_of(step, row, pos) * kv_width;
  if (item < rotated) {
    const int h = item / quads, i = (item % quads) * 4;  // h < hq: a q head, else a k head
    float* v = x + h * D;
    const float4 a = load4(v + i), b = load4(v + i + half);
    const float4 c = load4(rotary.cos + int64_t{pos} * half + i), s = load4(rotary.sin + int64_t{pos} * half + i);
    const float4 r0 =
        make_float4(a.x * c.x - b.x * s.x, a.y * c.y - b.y * s.y, a.z * c.z - b.z * s.z, a.w * c.w - b.w * s.w);
    const float4 r1 =
        make_float4(b.x * c.x + a.x * s.x, b.y * c.y + a.y * s.y, b.z * c.z + a.z * s.z, b.w * c.w + a.w * s.w);
    if (h < hq) {
      *reinterpret_cast<float4*>(v + i) = r0;
      *reinterpret_cast<float4*>(v + i + half) = r1;
    } else {
      KV* k = keys + at + (h - hq) * D;
      store4(k + i, r0);
      store4(k + i + half, r1);
    }
  } else {
    const int j = (item - rotated) * 4;
    store4(values + at + j, load4(x + q_width + kv_width + j));
  }
}

}  // namespace

void rope_kv_write(float* qkv, const AttentionShape& shape, const StepRows& step, const Rotary& rotary, void* keys,
                   void* values, DType kv_dtype, cudaStream_t stream) {
  if (shape.rows == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(qkv) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(rotary.cos) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(rotary.sin) % 16 == 0;
  const bool four = rotary.neox && 2 * rotary.half == shape.head_dim && rotary.half % 4 == 0 && aligned;
  if (four) {
    const int items =
        (shape.num_heads + shape.num_kv_heads) * (rotary.half / 4) + shape.num_kv_heads * shape.head_dim / 4;
    const dim3 grid(blocks_for(items, 128), static_cast<unsigned>(shape.rows));
    dispatch_stored_dtype(kv_dtype, [&](auto t) {
      using T = decltype(t);
      rope_kv_write4_kernel<T>
          <<<grid, 128, 0, stream>>>(qkv, shape, step, rotary, static_cast<T*>(keys), static_cast<T*>(values));
    });
  } else {
    const int items = (shape.num_heads + shape.num_kv_heads) * rotary.half +
                      shape.num_kv_heads * (shape.head_dim - 2 * rotary.half) + shape.num_kv_heads * shape.head_dim;
    const dim3 grid(blocks_for(items, 256), static_cast<unsigned>(shape.rows));
    dispatch_stored_dtype(kv_dtype, [&](auto t) {
      using T = decltype(t);
      rope_kv_write_kernel<T>
          <<<grid, 256, 0, stream>>>(qkv, shape, step, rotary, static_cast<T*>(keys), static_cast<T*>(values));
    });
  }
  check_launch("rope_kv_write");
}

}  // namespace kiln::runtime::cuda
