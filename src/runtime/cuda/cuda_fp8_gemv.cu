// Decode's FP8 products on tensor cores: up to 8 activation rows, quantized
// to E4M3 per row, times an E4M3 weight matrix read once from device memory.
//
// Why not the fp32 gemv (cuda_gemv.cu) with E4M3 weights: converting every
// weight byte to fp32 and one FMA per byte and row made that kernel bound by
// the SM's conversion and FMA rate, not by memory (1.5-1.9 TB/s of weight
// bytes on an H200 whose copy bandwidth is 4.1 TB/s). Here mma.sync's
// m16n8k32 E4M3 product does the multiply-adds on the tensor cores with fp32
// accumulation, so the SM's work per weight byte is a load and a share of one
// instruction, and the weights stream at the memory's rate.
//
// A block of 8 warps takes 16 output features (the mma's M); the 8 activation
// rows are its N (rows beyond `rows` are zero); each warp takes an eighth of
// K. A lane loads 16 contiguous bytes of each of its two weight rows per 64
// columns, and the same 16 bytes of its activation row: the order of k inside
// a 64-column chunk is permuted identically for both operands, which a sum
// does not see. The warps' partial tiles are summed through shared memory and
// the epilogue applies both scale vectors, the bias and the residual sum.
#include <algorithm>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kFeatures = 16;  // the mma's M
constexpr int kChunk = 64;     // columns per 16-byte lane load (4 lanes of a row)

__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // FP8 engines are refused below sm_89 before any product runs
#endif
}

// 16 bytes at p, or zeros where the chunk lies past the row's end. STREAM:
// a weight read once, not kept in L1, with L2 fetching 256-byte lines.
template <bool STREAM>
__device__ __forceinline__ uint4 load16(const uint8_t* p, bool in) {
  if (!in) return make_uint4(0, 0, 0, 0);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (STREAM) {
    uint4 u;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p));
    return u;
  }
#endif
  return __ldg(reinterpret_cast<const uint4*>(p));
}

// kDepth: chunks whose loads a warp has in flight at once (a warp's eighth
// of a 4096-column row is 8 chunks: depth 8 reads it in one round trip).
template <int kDepth, bool STREAM>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_e4m3_kernel(const uint8_t* __restrict__ q, const float* __restrict__ x_scale, int rows,
                     const uint8_t* __restrict__ w, const float* __restrict__ w_scale, const float* __restrict__ bias,
                     float* __restrict__ out, int64_t K, int64_t N, bool accumulate, const float* __restrict__ run_if) {
  if (run_if && *run_if == 0.f) return;  // an expert no row uses
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;  // the mma fragments' group and thread-in-group
  const int64_t n0 = blockIdx.x * int64_t{kFeatures};
  // This lane's two weight rows (clamped: a tile past N computes what is not stored).
  const uint8_t* w_lo = w + min(n0 + g, N - 1) * K + t * 16;
  const uint8_t* w_hi = w + min(n0 + g + 8, N - 1) * K + t * 16;
  const bool has_row = g < rows;
  const uint8_t* xr = q + (has_row ? g : 0) * K + t * 16;

  // This warp's chunks: a contiguous eighth of the row.
  const int64_t chunks = (K + kChunk - 1) / kChunk;
  const int64_t per_warp = (chunks + kWarps - 1) / kWarps;
  const int64_t c_begin = warp * per_warp, c_end = min(chunks, c_begin + per_warp);

  float d[4] = {0.f, 0.f, 0.f, 0.f};
  for (int64_t c = c_begin; c < c_end; c += kDepth) {
    uint4 lo[kDepth], hi[kDepth], x[kDepth];
#pragma unroll
    for (int u = 0; u < kDepth; ++u) {
      const int64_t k = (c + u) * kChunk;
      const bool in = c + u < c_end && k + t * 16 < K;
      lo[u] = load16<STREAM>(w_lo + k, in);
      hi[u] = load16<STREAM>(w_hi + k, in);
      x[u] = load16<false>(xr + k, in && has_row);
    }
#pragma unroll
    for (int u = 0; u < kDepth; ++u) {
      // Bytes 0-7 of each lane's 16 as one k32 step, bytes 8-15 as the next.
      mma_e4m3(d, lo[u].x, hi[u].x, lo[u].y, hi[u].y, x[u].x, x[u].y);
      mma_e4m3(d, lo[u].z, hi[u].z, lo[u].w, hi[u].w, x[u].z, x[u].w);
    }
  }

  // d: features g (d[0], d[1]) and g + 8 (d[2], d[3]), activation rows 2t and 2t + 1.
  __shared__ float4 parts[kWarps][32];
  parts[warp][lane] = make_float4(d[0], d[1], d[2], d[3]);
  __syncthreads();
  if (warp != 0) return;
  float4 s = parts[0][lane];
#pragma unroll
  for (int p = 1; p < kWarps; ++p) {
    const float4 v = parts[p][lane];
    s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
  }
  const float v[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t n = n0 + g + (i >= 2 ? 8 : 0);
    const int m = 2 * t + (i % 2);
    if (n >= N || m >= rows) continue;
    float r = v[i] * x_scale[m] * w_scale[n] + (bias ? bias[n] : 0.f);
    if (accumulate) r += out[m * N + n];
    out[m * N + n] = r;
  }
}

}  // namespace

bool gemv_e4m3_supported(int64_t rows, int64_t in) { return rows >= 1 && rows <= kGemvMaxRows && in % 16 == 0; }

void gemv_e4m3(const void* q, const float* x_scale, int64_t rows, const void* w, const float* w_scale, int64_t in,
               int64_t out_features, const float* bias, float* out, bool accumulate, cudaStream_t stream,
               const float* run_if, int depth, bool streaming) {
  if (!gemv_e4m3_supported(rows, in)) throw_error("internal: gemv_e4m3 takes 1 to 8 rows and in % 16 == 0");
  const auto blocks = static_cast<unsigned>((out_features + kFeatures - 1) / kFeatures);
  auto run = [&](auto kernel) {
    kernel<<<blocks, kWarps * 32, 0, stream>>>(static_cast<const uint8_t*>(q), x_scale, static_cast<int>(rows),
                                               static_cast<const uint8_t*>(w), w_scale, bias, out, in, out_features,
                                               accumulate, run_if);
  };
  if (streaming) {
    depth == 4 ? run(gemv_e4m3_kernel<4, true>) : run(gemv_e4m3_kernel<8, true>);
  } else {
    depth == 4 ? run(gemv_e4m3_kernel<4, false>) : run(gemv_e4m3_kernel<8, false>);
  }
  check_launch("gemv_e4m3");
}

}  // namespace kiln::runtime::cuda
