// Batch-1 decode's matrix-vector products on the GPU, against the memory
// system: for Llama-2-7B's four fp16 weight shapes, GB/s of weight bytes read
// by kiln's gemv (cuda::gemv) and by variants of its loop (load depth, output
// rows per warp, L1-bypassing loads), beside a plain read-everything kernel
// and cudaMemcpy device-to-device bandwidth measured in the same run. Also
// checks each variant's result against kiln's gemv. Then FP8 (fp8_section):
// the tensor-core E4M3 gemv beside the fp32 one, checked against float64.
// Run by hand on the GPU
// machine (bench/gpu_gemv.sh); not a ctest test.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/cuda/cuda_kernels.h"

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

__device__ __forceinline__ uint4 load_weights(const __half* p, bool no_allocate) {
  uint4 u;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (no_allocate) {
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p));
  } else
#endif
  {
    u = __ldg(reinterpret_cast<const uint4*>(p));
  }
  return u;
}

__device__ __forceinline__ float dot8(const uint4& u, const float* x) {
  const __half2* h = reinterpret_cast<const __half2*>(&u);
  const float4 a = *reinterpret_cast<const float4*>(x), b = *reinterpret_cast<const float4*>(x + 4);
  const float2 w0 = __half22float2(h[0]), w1 = __half22float2(h[1]), w2 = __half22float2(h[2]),
               w3 = __half22float2(h[3]);
  return a.x * w0.x + a.y * w0.y + a.z * w1.x + a.w * w1.y + b.x * w2.x + b.y * w2.y + b.z * w3.x + b.w * w3.y;
}

// ROWS output features per warp, DEPTH 16-byte loads per row in flight, one x row.
template <int DEPTH, int ROWS, bool NOALLOC, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    variant(const float* __restrict__ x, const __half* __restrict__ w, float* __restrict__ out, int K, int N) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * WARPS + warp) * ROWS;
  if (n0 >= N) return;
  float acc[ROWS] = {};
  constexpr int kStep = 32 * 8;
  int k = lane * 8;
  for (; k + (DEPTH - 1) * kStep < K; k += DEPTH * kStep) {
    uint4 u[ROWS][DEPTH];
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
#pragma unroll
      for (int d = 0; d < DEPTH; ++d) u[r][d] = load_weights(w + int64_t(n0 + r) * K + k + d * kStep, NOALLOC);
#pragma unroll
    for (int d = 0; d < DEPTH; ++d)
#pragma unroll
      for (int r = 0; r < ROWS; ++r) acc[r] += dot8(u[r][d], x + k + d * kStep);
  }
  for (; k < K; k += kStep) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] += dot8(load_weights(w + int64_t(n0 + r) * K + k, NOALLOC), x + k);
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    float v = acc[r];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0 && n0 + r < N) out[n0 + r] = v;
  }
}

// One output feature per warp, the next DEPTH loads issued before the last
// DEPTH are used (software pipelining: the warp always has loads in flight).
template <int DEPTH, bool NOALLOC, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    pipelined(const float* __restrict__ x, const __half* __restrict__ w, float* __restrict__ out, int K, int N) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * WARPS + warp;
  if (n >= N) return;
  const __half* wr = w + int64_t(n) * K;
  constexpr int kStep = 32 * 8;
  uint4 cur[DEPTH], nxt[DEPTH];
  int k = lane * 8;
#pragma unroll
  for (int d = 0; d < DEPTH; ++d) {
    if (k + d * kStep < K) cur[d] = load_weights(wr + k + d * kStep, NOALLOC);
  }
  float acc = 0.f;
  for (; k < K; k += DEPTH * kStep) {
    const int kn = k + DEPTH * kStep;
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      if (kn + d * kStep < K) nxt[d] = load_weights(wr + kn + d * kStep, NOALLOC);
    }
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      if (k + d * kStep < K) acc += dot8(cur[d], x + k + d * kStep);
    }
#pragma unroll
    for (int d = 0; d < DEPTH; ++d) cur[d] = nxt[d];
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) out[n] = acc;
}

// Split over K: each warp takes one SLICE-element slice of one row (a single
// burst of loads), the block's warps cover consecutive slices of the same
// rows, and shared memory sums them: many short warps, several waves.
template <int SLICE, bool NOALLOC>
__global__ void __launch_bounds__(256)
    split_k(const float* __restrict__ x, const __half* __restrict__ w, float* __restrict__ out, int K, int N) {
  __shared__ float part[8][8];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slices = (K + SLICE - 1) / SLICE;
  // Block: 8 warps; rows_per_block = 8 / slices_per_pass... simple scheme: warp w -> row blockIdx.x, slices w, w+8, ...
  const int n = blockIdx.x;
  if (n >= N) return;
  const __half* wr = w + int64_t(n) * K;
  float acc = 0.f;
  for (int s = warp; s < slices; s += 8) {
    constexpr int kLoads = SLICE / 256;
    uint4 u[kLoads];
    const int base = s * SLICE + lane * 8;
#pragma unroll
    for (int d = 0; d < kLoads; ++d) {
      if (base + d * 256 < K) u[d] = load_weights(wr + base + d * 256, NOALLOC);
    }
#pragma unroll
    for (int d = 0; d < kLoads; ++d) {
      if (base + d * 256 < K) acc += dot8(u[d], x + base + d * 256);
    }
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) part[0][warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = 0.f;
    for (int i = 0; i < 8; ++i) v += part[0][i];
    out[n] = v;
  }
}

__global__ void read_all(const uint4* p, int64_t n, unsigned* sink) {
  unsigned s = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(p + i);
    s ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (s == 0x12345678u) *sink = s;
}

__global__ void fill_half(__half* p, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    p[i] = __float2half((static_cast<float>(h % 2001) - 1000.f) * 1e-4f);
  }
}

// E4M3 bytes from a hash, never NaN (0x7f / 0xff): the FP8 section's weights.
__global__ void fill_e4m3(uint8_t* p, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const uint8_t b = static_cast<uint8_t>(h);
    p[i] = (b & 0x7f) == 0x7f ? static_cast<uint8_t>(b - 1) : b;
  }
}

// An E4M3 byte's value, decoded by hand (the reference shares no code with the kernels).
double e4m3_value(uint8_t b) {
  const int exponent = (b >> 3) & 0xf, mantissa = b & 7;
  const double magnitude =
      exponent == 0 ? mantissa / 8.0 * std::ldexp(1.0, -6) : (1 + mantissa / 8.0) * std::ldexp(1.0, exponent - 7);
  return b & 0x80 ? -magnitude : magnitude;
}

template <typename F>
float median_ms(F&& f, int reps = 30) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  ok(cudaGetLastError(), "kernels");
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Shape {
  const char* name;
  int n, k;
};

// FP8: Llama-3-8B's four E4M3 weight shapes at 1 and 8 rows, GB/s of weight
// bytes for the tensor-core gemv (cuda::gemv_e4m3, activations quantized by
// cuda::quantize_rows_e4m3) beside the fp32 gemv reading the same E4M3
// weights; each gemv_e4m3 result against a float64 sum over the decoded
// bytes and scales. False on a mismatch.
bool fp8_section() {
  const Shape shapes[] = {{"qkv 6144x4096", 6144, 4096},
                          {"out 4096x4096", 4096, 4096},
                          {"gate_up 28672x4096", 28672, 4096},
                          {"down 4096x14336", 4096, 14336}};
  constexpr int kCopies = 4, kRows = 8;
  int64_t most = 0, widest = 0;
  for (const auto& s : shapes)
    most = std::max<int64_t>(most, int64_t(s.n) * s.k), widest = std::max(widest, int64_t(s.k));
  uint8_t *w = nullptr, *q = nullptr;
  float *x = nullptr, *xs = nullptr, *ws = nullptr, *out = nullptr;
  ok(cudaMalloc(&w, most * kCopies), "cudaMalloc");
  ok(cudaMalloc(&q, kRows * widest), "cudaMalloc");
  ok(cudaMalloc(&x, kRows * widest * 4), "cudaMalloc");
  ok(cudaMalloc(&xs, kRows * 4), "cudaMalloc");
  ok(cudaMalloc(&ws, 32768 * 4), "cudaMalloc");
  ok(cudaMalloc(&out, kRows * 32768 * 4), "cudaMalloc");
  fill_e4m3<<<1024, 256>>>(w, most * kCopies, 11);
  std::vector<float> hx(kRows * widest), hws(32768);
  for (size_t i = 0; i < hx.size(); ++i) hx[i] = std::sin(0.37f * i) * (1 + (i % 97 == 0 ? 20 : 0));
  for (size_t i = 0; i < hws.size(); ++i) hws[i] = 1e-3f * (1 + i % 13);
  ok(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice), "x");
  ok(cudaMemcpy(ws, hws.data(), hws.size() * 4, cudaMemcpyHostToDevice), "ws");
  bool good = true;
  std::printf("%-20s %5s %9s %9s %9s %9s %9s\n", "shape (E4M3)", "rows", "alone", "in a row", "depth 4", "via L1",
              "fp32 gemv");
  for (const auto& s : shapes) {
    const int64_t per = int64_t(s.n) * s.k;
    std::vector<uint8_t> hw(per);
    ok(cudaMemcpy(hw.data(), w, per, cudaMemcpyDeviceToHost), "w");
    for (int rows : {1, 8}) {
      kiln::runtime::cuda::quantize_rows_e4m3(x, rows, s.k, q, xs, nullptr);
      int copy = 0;
      auto next_w = [&] { return w + per * (copy++ % kCopies); };
      // Alone (event, one launch, event: the launch's latency counted) and 8
      // launches in a row (as a recorded decode step runs them), per launch.
      namespace kc = kiln::runtime::cuda;
      const float alone_ms =
          median_ms([&] { kc::gemv_e4m3(q, xs, rows, next_w(), ws, s.k, s.n, nullptr, out, false, nullptr); });
      auto chained = [&](auto launch) {
        return median_ms([&] {
                 for (int i = 0; i < 8; ++i) launch();
               }) /
               8;
      };
      const float mma_ms =
          chained([&] { kc::gemv_e4m3(q, xs, rows, next_w(), ws, s.k, s.n, nullptr, out, false, nullptr); });
      const float mma4_ms = chained(
          [&] { kc::gemv_e4m3(q, xs, rows, next_w(), ws, s.k, s.n, nullptr, out, false, nullptr, nullptr, 4); });
      const float cached_ms = chained(
          [&] { kc::gemv_e4m3(q, xs, rows, next_w(), ws, s.k, s.n, nullptr, out, false, nullptr, nullptr, 8, false); });
      const float f32_ms = chained([&] {
        kc::gemv(x, rows, next_w(), kiln::DType::f8e4m3, s.k, s.n, nullptr, out, false, nullptr, nullptr, ws);
      });
      auto rate = [&](float ms) { return per / ms / 1e6; };
      std::printf("%-20s %5d %9.0f %9.0f %9.0f %9.0f %9.0f   GB/s\n", s.name, rows, rate(alone_ms), rate(mma_ms),
                  rate(mma4_ms), rate(cached_ms), rate(f32_ms));
      // The check: copy 0, every 5th feature and the last tile's.
      kiln::runtime::cuda::gemv_e4m3(q, xs, rows, w, ws, s.k, s.n, nullptr, out, false, nullptr);
      std::vector<uint8_t> hq(rows * s.k);
      std::vector<float> hxs(rows), hout(int64_t(rows) * s.n);
      ok(cudaMemcpy(hq.data(), q, hq.size(), cudaMemcpyDeviceToHost), "q");
      ok(cudaMemcpy(hxs.data(), xs, rows * 4, cudaMemcpyDeviceToHost), "xs");
      ok(cudaMemcpy(hout.data(), out, hout.size() * 4, cudaMemcpyDeviceToHost), "out");
      double worst = 0;
      for (int m = 0; m < rows; ++m) {
        for (int n = 0; n < s.n; ++n) {
          if (n % 5 != 0 && n < s.n - 16) continue;
          double sum = 0, magnitude = 0;
          for (int k = 0; k < s.k; ++k) {
            const double t = e4m3_value(hq[int64_t(m) * s.k + k]) * e4m3_value(hw[int64_t(n) * s.k + k]);
            sum += t, magnitude += std::fabs(t);
          }
          const double want = sum * hxs[m] * hws[n], scale = magnitude * hxs[m] * hws[n];
          worst = std::max(worst, std::fabs(hout[int64_t(m) * s.n + n] - want) / std::max(scale, 1e-30));
        }
      }
      // fp32 accumulation on the tensor cores: well inside 1e-4 of the sum of |terms|.
      if (worst > 1e-4) {
        std::printf("  MISMATCH: error %.3g of the sum of |terms|\n", worst);
        good = false;
      }
    }
  }
  cudaFree(w), cudaFree(q), cudaFree(x), cudaFree(xs), cudaFree(ws), cudaFree(out);
  return good;
}

}  // namespace

int main() {
  const Shape shapes[] = {{"qkv 12288x4096", 12288, 4096},
                          {"out 4096x4096", 4096, 4096},
                          {"gate_up 22016x4096", 22016, 4096},
                          {"down 4096x11008", 4096, 11008}};
  // Weights of all four in one buffer per shape, 4 copies each so L2 (50 MB) never holds the next call's bytes.
  int64_t most = 0;
  for (const auto& s : shapes) most = std::max<int64_t>(most, int64_t(s.n) * s.k);
  constexpr int kCopies = 4;
  __half* w = nullptr;
  float *x = nullptr, *out = nullptr, *ref = nullptr;
  unsigned* sink = nullptr;
  ok(cudaMalloc(&w, most * kCopies * 2), "cudaMalloc");
  ok(cudaMalloc(&x, 16384 * 4), "cudaMalloc");
  ok(cudaMalloc(&out, 32768 * 4), "cudaMalloc");
  ok(cudaMalloc(&ref, 32768 * 4), "cudaMalloc");
  ok(cudaMalloc(&sink, 4), "cudaMalloc");
  fill_half<<<1024, 256>>>(w, most * kCopies, 7);
  std::vector<float> hx(16384);
  for (int i = 0; i < 16384; ++i) hx[i] = std::sin(0.37f * i);
  ok(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice), "x");

  // The memory system: device-to-device copy (read + write) and a read-only sweep.
  const int64_t bytes = most * kCopies * 2;
  void* copy_dst = nullptr;
  ok(cudaMalloc(&copy_dst, bytes / 2), "cudaMalloc");
  const float copy_ms = median_ms([&] { cudaMemcpyAsync(copy_dst, w, bytes / 2, cudaMemcpyDeviceToDevice); });
  const float read_ms =
      median_ms([&] { read_all<<<132 * 8, 512>>>(reinterpret_cast<const uint4*>(w), bytes / 16, sink); });
  std::printf("copy (read+write) %.0f GB/s, read-only sweep %.0f GB/s\n", 2.0 * (bytes / 2) / copy_ms / 1e6,
              bytes / read_ms / 1e6);

  std::printf("%-20s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "shape (fp16, 1 row)", "kiln", "d4r1", "d8r1",
              "d4r1na", "pipe2", "pipe4", "pipe4na", "pipe8", "split1k", "split2k");
  double total_kiln = 0, total_best = 0, total_bytes = 0;
  for (const auto& s : shapes) {
    const int64_t per = int64_t(s.n) * s.k;
    int copy = 0;
    auto next_w = [&] { return w + per * (copy++ % kCopies); };
    const double gb = per * 2 / 1e9;
    auto rate = [&](float ms) { return gb / ms * 1e3; };
    const float kiln_ms = median_ms(
        [&] { kiln::runtime::cuda::gemv(x, 1, next_w(), kiln::DType::f16, s.k, s.n, nullptr, ref, false, nullptr); });
    float best = kiln_ms;
    // Times `launch(weights)`, then checks its output against kiln's gemv on the same bytes (copy 0).
    auto measure = [&](auto launch) {
      const float ms = median_ms([&] { launch(next_w()); });
      launch(w);
      kiln::runtime::cuda::gemv(x, 1, w, kiln::DType::f16, s.k, s.n, nullptr, ref, false, nullptr);
      std::vector<float> a(s.n), b(s.n);
      cudaMemcpy(a.data(), out, s.n * 4, cudaMemcpyDeviceToHost);
      cudaMemcpy(b.data(), ref, s.n * 4, cudaMemcpyDeviceToHost);
      double err = 0;
      for (int i = 0; i < s.n; ++i) err = std::max(err, double(std::fabs(a[i] - b[i])));
      if (err > 1e-3) std::printf("  MISMATCH %g\n", err);
      best = std::min(best, ms);
      return rate(ms);
    };
    auto run = [&](auto kernel, int rows_per_warp) {
      constexpr int kWarps = 8;
      const unsigned blocks = (s.n + kWarps * rows_per_warp - 1) / (kWarps * rows_per_warp);
      return measure([&](const __half* weights) { kernel<<<blocks, kWarps * 32>>>(x, weights, out, s.k, s.n); });
    };
    const double r1 = run(variant<4, 1, false, 8>, 1), r2 = run(variant<8, 1, false, 8>, 1),
                 r5 = run(variant<4, 1, true, 8>, 1), p2 = run(pipelined<2, false, 8>, 1),
                 p4 = run(pipelined<4, false, 8>, 1), p4n = run(pipelined<4, true, 8>, 1),
                 p8 = run(pipelined<8, false, 8>, 1);
    // split_k: one block per row.
    auto run_split = [&](auto kernel) {
      return measure([&](const __half* weights) { kernel<<<s.n, 256>>>(x, weights, out, s.k, s.n); });
    };
    const double s1 = run_split(split_k<1024, false>), s2 = run_split(split_k<2048, false>);
    std::printf("%-20s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f   GB/s\n", s.name, rate(kiln_ms), r1,
                r2, r5, p2, p4, p4n, p8, s1, s2);
    total_kiln += kiln_ms;
    total_best += best;
    total_bytes += gb;
  }
  std::printf("all four: kiln %.0f GB/s, best variant per shape %.0f GB/s\n", total_bytes / total_kiln * 1e3,
              total_bytes / total_best * 1e3);
  return fp8_section() ? 0 : 1;
}
