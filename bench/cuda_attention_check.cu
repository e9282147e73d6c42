// Checks and times the CUDA attention kernels (decode: src/runtime/cuda/cuda_attention.cu
// and cuda_decode_attention_mma.cu; prefill: cuda_prefill_attention*.cu) on
// random paged KV caches, on the GPU machine:
//
//   kiln_attention_check [--quick] [--reps N] [--only SUBSTRING]
//
// Each configuration builds a KV cache with shuffled block tables, runs the
// split kernel on CUDA cores (cuda::attention_on_cuda_cores), the split kernel
// on tensor cores (cuda::decode_attention_mma, where it takes the shape), the
// previous per-head kernel (cuda::attention_per_head) and a plain reference
// (one thread per (row, q head), float64 accumulation), and prints each
// kernel's largest absolute error against the reference. Prompt chunks go the
// same way through both prefill kernels (timed as TFLOP/s). Then (without
// --quick) it times the kernels (CUDA events around each launch, L2 flushed
// before it, median of --reps) and prints the GB/s of K and V bytes they read
// beside a device-to-device cudaMemcpy's bandwidth measured in the same run.
// Exit status 1 when an error exceeds its kernel's tolerance or a row outside
// the row list was written.
//
// Built with the CUDA target (CMake target kiln_attention_check, not a ctest
// test); scripts/gpu-check.sh pack carries it as .carry/bin/kiln_attention_check
// (run it there with LD_LIBRARY_PATH=.carry/lib:/usr/local/cuda/lib64). --quick
// checks without timing, small enough for compute-sanitizer.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace {

using kiln::DType;
using kiln::runtime::cuda::AttentionShape;
using kiln::runtime::cuda::StepRows;
namespace cuda = kiln::runtime::cuda;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(2);
  }
}

constexpr float kSentinel = 12345.f;  // out rows outside the row list must keep it
constexpr double kTolerance = 2e-4;   // outputs are convex combinations of V in [-1, 1]
// The tensor-core kernel rounds q and the softmax weights to fp16 (E4M3 and
// fp16 caches; relative 2^-11 each): scores of a few units move by ~1e-3,
// weights and outputs by as much. bf16 caches use bf16 products (2^-8): 8x.
constexpr double kMmaTolerance = 2e-3;
constexpr double kMmaToleranceBf16 = 1.6e-2;

struct Config {
  const char* name;
  DType dtype;
  int rows;     // decode rows
  int context;  // keys per row (all rows), or the most a row has (varied)
  int heads, kv_heads, head_dim;
  int window = 0;
  bool alibi = false;
  bool varied = false;    // row lengths drawn from [1, context]
  bool row_list = false;  // decode rows interleaved with rows the kernel must not touch
  int max_context = 4096;
  int block_size = 16;
  bool timed = true;
};

std::vector<Config> configs() {
  std::vector<Config> c;
  // Llama-2-7B shapes (fp16, 32 heads, head_dim 128, MHA).
  c.push_back({"fp16 MHA D128 b1 ctx136", DType::f16, 1, 136, 32, 32, 128});
  c.push_back({"fp16 MHA D128 b1 ctx4096", DType::f16, 1, 4096, 32, 32, 128});
  c.push_back({"fp16 MHA D128 b64 ctx192", DType::f16, 64, 192, 32, 32, 128});
  c.push_back({"fp16 MHA D128 b256 ctx192", DType::f16, 256, 192, 32, 32, 128});
  c.push_back({"fp16 MHA D128 b16 ctx2048", DType::f16, 16, 2048, 32, 32, 128});
  // Grouped queries (Llama-3-8B / Mistral: 32 q heads on 8 KV heads).
  c.push_back({"fp16 GQA 32/8 D128 b1 ctx4096", DType::f16, 1, 4096, 32, 8, 128});
  c.push_back({"fp16 GQA 32/8 D128 b64 ctx1024", DType::f16, 64, 1024, 32, 8, 128});
  // Groups of 8 (Llama-3-70B): two blocks of 4 q heads per KV head.
  c.push_back({"fp16 GQA 64/8 D128 b1 ctx4096", DType::f16, 1, 4096, 64, 8, 128});
  c.push_back({"fp16 GQA 64/8 D128 b32 ctx1024", DType::f16, 32, 1024, 64, 8, 128});
  {
    Config x{"bf16 MHA D64 b16 ctx<=2000", DType::bf16, 16, 2000, 16, 16, 64};
    x.varied = true;
    c.push_back(x);
  }
  {
    Config x{"fp32 GQA 8/2 D80 window256 b8 ctx<=1500", DType::f32, 8, 1500, 8, 2, 80};
    x.window = 256;
    x.varied = true;
    c.push_back(x);
  }
  {
    Config x{"fp16 ALiBi D128 b8 ctx<=1024", DType::f16, 8, 1024, 32, 32, 128};
    x.alibi = true;
    x.varied = true;
    c.push_back(x);
  }
  {
    Config x{"fp16 MHA D128 b1 ctx512 max_context 16384", DType::f16, 1, 512, 32, 32, 128};
    x.max_context = 16384;
    c.push_back(x);
  }
  // E4M3 caches (FP8 KV): Llama-3-8B's decode shapes at batch 1, 64 and 512.
  c.push_back({"e4m3 GQA 32/8 D128 b1 ctx4096", DType::f8e4m3, 1, 4096, 32, 8, 128});
  c.push_back({"e4m3 GQA 32/8 D128 b1 ctx256", DType::f8e4m3, 1, 256, 32, 8, 128});
  c.push_back({"e4m3 GQA 32/8 D128 b64 ctx1024", DType::f8e4m3, 64, 1024, 32, 8, 128});
  c.push_back({"e4m3 GQA 32/8 D128 b512 ctx192", DType::f8e4m3, 512, 192, 32, 8, 128});
  c.push_back({"e4m3 MHA D128 b256 ctx192", DType::f8e4m3, 256, 192, 32, 32, 128});
  c.push_back({"e4m3 GQA 64/8 D128 b32 ctx1024", DType::f8e4m3, 32, 1024, 64, 8, 128});
  // Coverage: every lane layout, head tiling, masks, row lists, block sizes.
  auto cover = [&](Config x) {
    x.timed = false;
    c.push_back(x);
  };
  cover({"cover fp16 D16 b3", DType::f16, 3, 300, 4, 4, 16, 0, false, true});
  cover({"cover bf16 D32 GQA 8/4 b5", DType::bf16, 5, 700, 8, 4, 32, 0, false, true});
  cover({"cover fp32 D32 b4", DType::f32, 4, 500, 4, 2, 32, 0, false, true});
  cover({"cover fp16 D96 row list b6", DType::f16, 6, 900, 12, 12, 96, 0, false, true, true});
  cover({"cover fp16 D256 b3 window 100", DType::f16, 3, 1000, 8, 8, 256, 100, false, true});
  cover({"cover fp32 D256 b3", DType::f32, 3, 600, 4, 4, 256, 0, false, true});
  cover({"cover fp32 D160 b3 ALiBi", DType::f32, 3, 600, 4, 4, 160, 0, true, true});
  cover({"cover fp32 D80 b4 block 32", DType::f32, 4, 800, 6, 6, 80, 0, false, true, false, 4096, 32});
  cover({"cover bf16 MQA 71/1 D64 b3", DType::bf16, 3, 600, 71, 1, 64, 0, false, true});
  cover({"cover fp16 GQA 32/4 D128 b2 row list", DType::f16, 2, 3000, 32, 4, 128, 0, false, true, true});
  cover({"cover fp16 GQA 6/3 D64 b2", DType::f16, 2, 400, 6, 3, 64, 0, false, true});
  cover({"cover fp16 D100 (per-head path) b3", DType::f16, 3, 500, 4, 4, 100, 0, false, true});
  cover({"cover fp16 D128 b4 ctx<=5000 max_context 4096", DType::f16, 4, 5000, 8, 8, 128, 0, false, true});
  cover({"cover bf16 D128 b300 ctx<=40 block 8", DType::bf16, 300, 40, 4, 2, 128, 0, false, true, false, 64, 8});
  cover({"cover fp16 D128 b3 block 12", DType::f16, 3, 700, 4, 4, 128, 0, false, true, false, 4096, 12});
  cover({"cover fp16 D128 b2 window 1 ALiBi", DType::f16, 2, 300, 4, 4, 128, 1, true, true});
  cover({"cover e4m3 D16 GQA 4/2 b5", DType::f8e4m3, 5, 300, 4, 2, 16, 0, false, true});
  cover({"cover e4m3 D32 b4 window 100", DType::f8e4m3, 4, 700, 4, 4, 32, 100, false, true});
  cover({"cover e4m3 D64 MQA 71/1 b3 ALiBi", DType::f8e4m3, 3, 600, 71, 1, 64, 0, true, true});
  cover({"cover e4m3 D128 GQA 32/4 b2 row list", DType::f8e4m3, 2, 3000, 32, 4, 128, 0, false, true, true});
  cover({"cover e4m3 D128 b300 ctx<=40 block 8", DType::f8e4m3, 300, 40, 4, 2, 128, 0, false, true, false, 64, 8});
  cover({"cover e4m3 D128 b3 block 12 window 1", DType::f8e4m3, 3, 700, 4, 4, 128, 1, false, true, false, 4096, 12});
  cover({"cover e4m3 D128 b4 ctx<=5000 max_context 4096", DType::f8e4m3, 4, 5000, 8, 8, 128, 0, false, true});
  cover({"cover e4m3 D96 (CUDA cores only) b3", DType::f8e4m3, 3, 500, 4, 4, 96, 0, false, true});
  return c;
}

__device__ float hash_uniform(uint64_t i, uint32_t seed) {  // splitmix64 -> [-1, 1)
  uint64_t z = i * 0x9E3779B97F4A7C15ull + (uint64_t{seed} + 1) * 0xD1B54A32D192ED69ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.f / 16777216.f) - 1.f;
}

template <typename T>
__global__ void fill_kernel(T* x, int64_t n, uint32_t seed, float amplitude) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = cuda::from_float<T>(amplitude * hash_uniform(static_cast<uint64_t>(i), seed));
  }
}

__global__ void set_kernel(float* x, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = value;
  }
}

// The obviously-correct version: one thread per (listed row, q head), two
// passes over the row's keys in float64.
constexpr int kMaxHeadDim = 256;
template <typename KV>
__global__ void reference_kernel(const float* qkv, AttentionShape shape, StepRows step, const int32_t* row_list,
                                 const KV* keys, const KV* values, float* out) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= shape.rows * shape.num_heads) return;
  const int index = t / shape.num_heads, h = t % shape.num_heads;
  const int row = row_list ? row_list[index] : index;
  const int D = shape.head_dim, H = shape.num_heads, HK = shape.num_kv_heads;
  const int kvh = h / (H / HK);
  const float* q = qkv + int64_t{row} * (H + 2 * HK) * D + int64_t{h} * D;
  const int pos = step.positions[row];
  const int first = shape.sliding_window > 0 ? max(0, pos - shape.sliding_window + 1) : 0;
  const int32_t* table = step.block_tables + step.table_offset[row];
  const double scale = 1.0 / sqrt(static_cast<double>(D));
  const double slope = shape.alibi ? shape.alibi_slopes[h] : 0.0;
  auto at = [&](int k) {
    const int64_t slot = int64_t{table[k / step.block_size]} * step.block_size + k % step.block_size;
    return (slot * HK + kvh) * D;
  };
  auto score = [&](int k) {
    const KV* kr = keys + at(k);
    double s = 0;
    for (int d = 0; d < D; ++d) s += static_cast<double>(q[d]) * static_cast<double>(cuda::to_float(kr[d]));
    return s * scale + slope * k;
  };
  double top = -INFINITY;
  for (int k = first; k <= pos; ++k) top = fmax(top, score(k));
  double acc[kMaxHeadDim];
  for (int d = 0; d < D; ++d) acc[d] = 0;
  double total = 0;
  for (int k = first; k <= pos; ++k) {
    const double w = exp(score(k) - top);
    total += w;
    const KV* vr = values + at(k);
    for (int d = 0; d < D; ++d) acc[d] += w * static_cast<double>(cuda::to_float(vr[d]));
  }
  float* o = out + int64_t{row} * H * D + int64_t{h} * D;
  for (int d = 0; d < D; ++d) o[d] = static_cast<float>(acc[d] / total);
}

template <typename T>
T* device_alloc(std::size_t count, const char* what) {
  void* p = nullptr;
  check(cudaMalloc(&p, std::max<std::size_t>(count * sizeof(T), 1)), what);
  return static_cast<T*>(p);
}

template <typename T>
T* upload(const std::vector<T>& host, const char* what) {
  T* p = device_alloc<T>(host.size(), what);
  check(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), what);
  return p;
}

std::size_t kv_size(DType d) { return d == DType::f32 ? 4 : d == DType::f8e4m3 ? 1 : 2; }

// Median milliseconds of `launch` over `reps` runs, each after a write of a
// buffer larger than L2 (so no run finds the last one's K and V cached).
template <typename F>
float median_ms(F&& launch, int reps, void* flush, std::size_t flush_bytes) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> ms;
  for (int r = 0; r < reps + 1; ++r) {
    check(cudaMemsetAsync(flush, r & 0xff, flush_bytes), "L2 flush");
    check(cudaEventRecord(start), "cudaEventRecord");
    launch();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "timed launch");
    float t = 0;
    check(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
    if (r > 0) ms.push_back(t);  // the first is a warm-up
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Device-to-device copy bandwidth, bytes read + written per second.
double copy_gbps(void* a, void* b, std::size_t bytes, int reps) {
  auto launch = [&] { check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); };
  const float ms = median_ms(launch, reps, b, 1);
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

// Block ids 0..blocks-1 in a shuffled order: sequences take their blocks
// from it, so no table is contiguous.
std::vector<int32_t> shuffled_pool(int64_t blocks, std::mt19937& rng) {
  std::vector<int32_t> pool(static_cast<std::size_t>(blocks));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  return pool;
}

// The shape both checks run, with ALiBi slopes 2^(-8 (h + 1) / H) where asked.
AttentionShape attention_shape(int rows, int H, int HK, int D, int window, int max_context, bool alibi) {
  AttentionShape shape;
  shape.rows = rows;
  shape.num_heads = H;
  shape.num_kv_heads = HK;
  shape.head_dim = D;
  shape.sliding_window = window;
  shape.max_context = max_context;
  shape.alibi = alibi;
  for (int h = 0; h < H && alibi; ++h) shape.alibi_slopes[h] = std::pow(2.f, -8.f * static_cast<float>(h + 1) / H);
  return shape;
}

void free_step(const StepRows& step) {
  cudaFree(const_cast<int32_t*>(step.positions));
  cudaFree(const_cast<int32_t*>(step.table_offset));
  cudaFree(const_cast<int32_t*>(step.block_tables));
}

struct Options {
  bool quick = false;
  int reps = 30;
  std::string only;
};

template <typename KV>
bool run_config(const Config& c, const Options& opt, std::mt19937& rng, void* flush, std::size_t flush_bytes,
                double copy_bw) {
  const int total_rows = c.row_list ? 2 * c.rows : c.rows;
  const int D = c.head_dim, H = c.heads, HK = c.kv_heads;
  // Positions: the listed rows are the decode rows; in a row-list config the
  // odd rows decode and the even ones stand for prompt rows the kernel skips.
  std::vector<int32_t> positions(total_rows), list;
  std::uniform_int_distribution<int> length(1, c.context);
  for (int r = 0; r < total_rows; ++r) positions[r] = (c.varied ? length(rng) : c.context) - 1;
  if (c.varied) positions[0] = c.context - 1;        // one row at the longest
  if (c.varied && total_rows > 2) positions[1] = 0;  // one row with a single key
  for (int r = 0; r < total_rows; ++r) {
    if (!c.row_list || r % 2 == 1) list.push_back(r);
  }
  // Block tables: each row its own sequence, blocks drawn from a shuffled pool.
  std::vector<int32_t> offsets(total_rows), tables;
  int64_t blocks = 0;
  for (int r = 0; r < total_rows; ++r) blocks += positions[r] / c.block_size + 1;
  blocks += 5;  // unused blocks in the pool
  const std::vector<int32_t> pool = shuffled_pool(blocks, rng);
  std::size_t next = 0;
  for (int r = 0; r < total_rows; ++r) {
    offsets[r] = static_cast<int32_t>(tables.size());
    for (int b = 0; b <= positions[r] / c.block_size; ++b) tables.push_back(pool[next++]);
  }

  const AttentionShape shape =
      attention_shape(static_cast<int>(list.size()), H, HK, D, c.window, c.max_context, c.alibi);

  const int64_t kv_elements = blocks * c.block_size * HK * D;
  const int64_t qkv_elements = int64_t{total_rows} * (H + 2 * HK) * D;
  const int64_t out_elements = int64_t{total_rows} * H * D;
  auto* keys = device_alloc<KV>(static_cast<std::size_t>(kv_elements), "keys");
  auto* values = device_alloc<KV>(static_cast<std::size_t>(kv_elements), "values");
  auto* qkv = device_alloc<float>(static_cast<std::size_t>(qkv_elements), "qkv");
  float* outs[4];  // CUDA-core split, per-head, reference, tensor-core split
  for (auto& o : outs) o = device_alloc<float>(static_cast<std::size_t>(out_elements), "out");
  const int64_t ws_floats = cuda::attention_workspace_floats(shape);
  float* workspace = ws_floats ? device_alloc<float>(static_cast<std::size_t>(ws_floats), "workspace") : nullptr;
  fill_kernel<<<1024, 256>>>(keys, kv_elements, 1, 1.f);
  fill_kernel<<<1024, 256>>>(values, kv_elements, 2, 1.f);
  fill_kernel<<<1024, 256>>>(qkv, qkv_elements, 3, 6.f);  // peaked softmax: scores of a few units
  for (auto& o : outs) set_kernel<<<256, 256>>>(o, out_elements, kSentinel);
  check(cudaGetLastError(), "fill");

  StepRows step;
  step.positions = upload(positions, "positions");
  step.table_offset = upload(offsets, "offsets");
  step.block_tables = upload(tables, "tables");
  step.block_size = c.block_size;
  const int32_t* row_list = c.row_list ? upload(list, "row list") : nullptr;

  auto run_new = [&] {
    cuda::attention_on_cuda_cores(qkv, shape, step, row_list, keys, values, c.dtype, outs[0], workspace, nullptr);
  };
  auto run_old = [&] { cuda::attention_per_head(qkv, shape, step, row_list, keys, values, c.dtype, outs[1], nullptr); };
  const bool has_mma = cuda::decode_attention_mma_supports(D, c.dtype);
  auto run_mma = [&] {
    cuda::decode_attention_mma(qkv, shape, step, row_list, keys, values, c.dtype, outs[3], workspace, nullptr);
  };
  run_new();
  run_old();
  if (has_mma) run_mma();
  const int threads = shape.rows * H;
  reference_kernel<KV><<<(threads + 63) / 64, 64>>>(qkv, shape, step, row_list, keys, values, outs[2]);
  check(cudaGetLastError(), "reference launch");
  check(cudaDeviceSynchronize(), "kernels");

  std::vector<float> host[4];
  for (int i = 0; i < 4; ++i) {
    host[i].resize(static_cast<std::size_t>(out_elements));
    check(cudaMemcpy(host[i].data(), outs[i], host[i].size() * sizeof(float), cudaMemcpyDeviceToHost), "copy");
  }
  double err[3] = {0, 0, 0};  // CUDA-core split, per-head, tensor-core split
  bool untouched = true;
  std::vector<bool> listed(total_rows, false);
  for (const int r : list) listed[r] = true;
  for (int r = 0; r < total_rows; ++r) {
    for (int64_t i = int64_t{r} * H * D; i < int64_t{r + 1} * H * D; ++i) {
      for (int k = 0; k < 3; ++k) {
        if (k == 2 && !has_mma) continue;
        const float v = host[k == 2 ? 3 : k][static_cast<std::size_t>(i)], ref = host[2][static_cast<std::size_t>(i)];
        if (!listed[r]) {
          untouched = untouched && v == kSentinel;
        } else {
          const double e = std::fabs(static_cast<double>(v) - ref);
          err[k] = std::isnan(e) ? INFINITY : std::max(err[k], e);
        }
      }
    }
  }
  const bool ok = err[0] <= kTolerance && err[1] <= kTolerance &&
                  err[2] <= (c.dtype == DType::bf16 ? kMmaToleranceBf16 : kMmaTolerance) && untouched;
  char mma_err[32] = "       -";
  if (has_mma) std::snprintf(mma_err, sizeof mma_err, "%.2e", err[2]);

  double bytes = 0;
  for (const int r : list) {
    const int first = c.window > 0 ? std::max(0, positions[r] - c.window + 1) : 0;
    bytes += 2.0 * (positions[r] - first + 1) * HK * D * static_cast<double>(kv_size(c.dtype));
  }
  // Partitions per row of the split launch (the workspace holds D + 2 floats per row, head and partition).
  const auto parts = static_cast<long long>(ws_floats ? ws_floats / (int64_t{shape.rows} * H * (D + 2)) : 1);
  if (!c.timed || opt.quick) {
    std::printf("%-46s %4lld parts  err split %.2e  mma %s  per-head %.2e%s  %s\n", c.name, parts, err[0], mma_err,
                err[1], untouched ? "" : "  (wrote unlisted rows)", ok ? "ok" : "FAIL");
  } else {
    const float ms_new = median_ms(run_new, opt.reps, flush, flush_bytes);
    const float ms_old = median_ms(run_old, opt.reps, flush, flush_bytes);
    const float ms_mma = has_mma ? median_ms(run_mma, opt.reps, flush, flush_bytes) : 0.f;
    auto gbps = [&](float ms) { return bytes / (ms * 1e-3) / 1e9; };
    char mma_time[96] = "tensor cores        -";
    if (has_mma) {
      std::snprintf(mma_time, sizeof mma_time, "tensor cores %8.1f us %6.0f GB/s (%3.0f%%) x%.2f", ms_mma * 1e3,
                    gbps(ms_mma), 100 * gbps(ms_mma) / copy_bw, ms_new / ms_mma);
    }
    std::printf(
        "%-46s %4lld parts  err split %.2e  mma %s  per-head %.2e%s  %s | KV %7.1f MB | split %8.1f us %6.0f GB/s "
        "(%3.0f%% of copy) | %s | per-head %8.1f us %6.0f GB/s (%3.0f%%)\n",
        c.name, parts, err[0], mma_err, err[1], untouched ? "" : "  (wrote unlisted rows)", ok ? "ok" : "FAIL",
        bytes / 1e6, ms_new * 1e3, gbps(ms_new), 100 * gbps(ms_new) / copy_bw, mma_time, ms_old * 1e3, gbps(ms_old),
        100 * gbps(ms_old) / copy_bw);
  }
  std::fflush(stdout);

  cudaFree(keys);
  cudaFree(values);
  cudaFree(qkv);
  for (auto& o : outs) cudaFree(o);
  cudaFree(workspace);
  free_step(step);
  cudaFree(const_cast<int32_t*>(row_list));
  return ok;
}

// Prefill: prompt chunks (each a sequence whose first `cached` keys are
// already in the cache) through the tiled kernels, CUDA cores
// (cuda::prefill_attention) and tensor cores (cuda::prefill_attention_mma),
// against the same float64 reference, every prompt row listed.
struct PrefillConfig {
  const char* name;
  DType kv_dtype;
  DType compute_dtype;       // the tensor-core kernel's product type
  std::vector<int> prompts;  // new rows per sequence
  int cached;                // keys already cached before each chunk
  int heads, kv_heads, head_dim;
  int window = 0;
  bool alibi = false;
  int block_size = 16;
  bool timed = true;
};

std::vector<PrefillConfig> prefill_configs() {
  std::vector<PrefillConfig> c;
  // Llama-3-8B's 2048-token prompt (32 q heads on 8 KV heads), in every cache type.
  c.push_back({"prefill e4m3/bf16 GQA 32/8 D128 2048", DType::f8e4m3, DType::bf16, {2048}, 0, 32, 8, 128});
  c.push_back({"prefill e4m3/fp16 GQA 32/8 D128 2048", DType::f8e4m3, DType::f16, {2048}, 0, 32, 8, 128});
  c.push_back({"prefill bf16 GQA 32/8 D128 2048", DType::bf16, DType::bf16, {2048}, 0, 32, 8, 128});
  // Llama-2-7B's (MHA, fp16).
  c.push_back({"prefill fp16 MHA D128 2048", DType::f16, DType::f16, {2048}, 0, 32, 32, 128});
  c.push_back({"prefill fp16 MHA D128 4 x 512", DType::f16, DType::f16, {512, 512, 512, 512}, 0, 32, 32, 128});
  auto cover = [&](PrefillConfig x) {
    x.timed = false;
    c.push_back(x);
  };
  cover({"prefill cover e4m3/fp16 D128 chunk after 300 cached", DType::f8e4m3, DType::f16, {200, 37}, 300, 8, 2, 128});
  cover({"prefill cover e4m3/bf16 D64 window 100 ALiBi", DType::f8e4m3, DType::bf16, {333}, 50, 8, 8, 64, 100, true});
  cover({"prefill cover bf16 D96 MQA 8/1 block 12", DType::bf16, DType::bf16, {150, 1, 64}, 0, 8, 1, 96, 0, false, 12});
  cover({"prefill cover fp16 D64 window 1", DType::f16, DType::f16, {130}, 5, 4, 4, 64, 1});
  cover({"prefill cover fp16 D40 GQA 6/3 window 70", DType::f16, DType::f16, {257, 65}, 10, 6, 3, 40, 70});
  return c;
}

template <typename KV>
bool run_prefill_config(const PrefillConfig& c, const Options& opt, std::mt19937& rng, void* flush,
                        std::size_t flush_bytes) {
  const int D = c.head_dim, H = c.heads, HK = c.kv_heads;
  std::vector<int32_t> positions, offsets, tables;
  std::vector<cuda::QueryTile> tiles;
  int64_t blocks = 0;
  for (const int n : c.prompts) blocks += (c.cached + n - 1) / c.block_size + 1;
  blocks += 5;  // unused blocks in the pool
  const std::vector<int32_t> pool = shuffled_pool(blocks, rng);
  std::size_t next = 0;
  double pairs = 0;  // (query, visible key) pairs: the FLOP count's unit
  for (const int n : c.prompts) {
    const auto offset = static_cast<int32_t>(tables.size()), first = static_cast<int32_t>(positions.size());
    for (int b = 0; b <= (c.cached + n - 1) / c.block_size; ++b) tables.push_back(pool[next++]);
    for (int i = 0; i < n; ++i) {
      const int pos = c.cached + i;
      positions.push_back(pos);
      offsets.push_back(offset);
      pairs += c.window > 0 ? std::min(pos + 1, c.window) : pos + 1;
    }
    for (int t = 0; t < n; t += cuda::kPrefillTile) tiles.push_back({first + t, std::min(cuda::kPrefillTile, n - t)});
  }
  const int rows = static_cast<int>(positions.size());
  const AttentionShape shape = attention_shape(rows, H, HK, D, c.window, 1 << 20, c.alibi);

  const int64_t kv_elements = blocks * c.block_size * HK * D;
  const int64_t qkv_elements = int64_t{rows} * (H + 2 * HK) * D;
  const int64_t out_elements = int64_t{rows} * H * D;
  auto* keys = device_alloc<KV>(static_cast<std::size_t>(kv_elements), "keys");
  auto* values = device_alloc<KV>(static_cast<std::size_t>(kv_elements), "values");
  auto* qkv = device_alloc<float>(static_cast<std::size_t>(qkv_elements), "qkv");
  float* outs[3];  // CUDA cores, tensor cores, reference
  for (auto& o : outs) o = device_alloc<float>(static_cast<std::size_t>(out_elements), "out");
  fill_kernel<<<1024, 256>>>(keys, kv_elements, 4, 1.f);
  fill_kernel<<<1024, 256>>>(values, kv_elements, 5, 1.f);
  fill_kernel<<<1024, 256>>>(qkv, qkv_elements, 6, 6.f);
  for (auto& o : outs) set_kernel<<<256, 256>>>(o, out_elements, kSentinel);
  check(cudaGetLastError(), "fill");
  StepRows step;
  step.positions = upload(positions, "positions");
  step.table_offset = upload(offsets, "offsets");
  step.block_tables = upload(tables, "tables");
  step.block_size = c.block_size;
  const cuda::QueryTile* device_tiles = upload(tiles, "tiles");
  const int num_tiles = static_cast<int>(tiles.size());

  auto run_cores = [&] {
    cuda::prefill_attention(qkv, shape, step, device_tiles, num_tiles, keys, values, c.kv_dtype, outs[0], nullptr);
  };
  const bool has_mma = cuda::prefill_attention_mma_supports(D, c.kv_dtype, c.compute_dtype);
  auto run_mma = [&] {
    cuda::prefill_attention_mma(qkv, shape, step, device_tiles, num_tiles, keys, values, c.kv_dtype, c.compute_dtype,
                                outs[1], nullptr);
  };
  run_cores();
  if (has_mma) run_mma();
  reference_kernel<KV><<<(rows * H + 63) / 64, 64>>>(qkv, shape, step, nullptr, keys, values, outs[2]);
  check(cudaGetLastError(), "reference launch");
  check(cudaDeviceSynchronize(), "kernels");
  std::vector<float> host[3];
  for (int i = 0; i < 3; ++i) {
    host[i].resize(static_cast<std::size_t>(out_elements));
    check(cudaMemcpy(host[i].data(), outs[i], host[i].size() * sizeof(float), cudaMemcpyDeviceToHost), "copy");
  }
  double err[2] = {0, 0};
  for (std::size_t i = 0; i < host[2].size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      if (k == 1 && !has_mma) continue;
      const double e = std::fabs(static_cast<double>(host[k][i]) - host[2][i]);
      err[k] = std::isnan(e) ? INFINITY : std::max(err[k], e);
    }
  }
  const double mma_tolerance = c.compute_dtype == DType::bf16 ? kMmaToleranceBf16 : kMmaTolerance;
  const bool ok = err[0] <= kTolerance && err[1] <= mma_tolerance;
  char mma_err[32] = "       -";
  if (has_mma) std::snprintf(mma_err, sizeof mma_err, "%.2e", err[1]);
  if (!c.timed || opt.quick) {
    std::printf("%-46s %4d tiles  err cores %.2e  mma %s  %s\n", c.name, num_tiles, err[0], mma_err,
                ok ? "ok" : "FAIL");
  } else {
    const double flop = 4.0 * D * H * pairs;  // Q K^T and P V, 2 FLOP a multiply-add
    const float ms_cores = median_ms(run_cores, opt.reps, flush, flush_bytes);
    const float ms_mma = has_mma ? median_ms(run_mma, opt.reps, flush, flush_bytes) : 0.f;
    std::printf(
        "%-46s %4d tiles  err cores %.2e  mma %s  %s | %.2f TFLOP | cores %8.1f us %6.1f TFLOP/s | "
        "tensor cores %8.1f us %6.1f TFLOP/s x%.2f\n",
        c.name, num_tiles, err[0], mma_err, ok ? "ok" : "FAIL", flop / 1e12, ms_cores * 1e3,
        flop / (ms_cores * 1e-3) / 1e12, ms_mma * 1e3, has_mma ? flop / (ms_mma * 1e-3) / 1e12 : 0.0,
        has_mma ? ms_cores / ms_mma : 0.0);
  }
  std::fflush(stdout);
  cudaFree(keys);
  cudaFree(values);
  cudaFree(qkv);
  for (auto& o : outs) cudaFree(o);
  free_step(step);
  cudaFree(const_cast<cuda::QueryTile*>(device_tiles));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--reps" && i + 1 < argc) {
      opt.reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      opt.only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--reps N] [--only SUBSTRING]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("%s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  const std::size_t flush_bytes = std::size_t{512} << 20;
  void* flush = device_alloc<char>(flush_bytes, "L2 flush buffer");
  double copy_bw = 0;
  if (!opt.quick) {
    const std::size_t bytes = std::size_t{1} << 30;
    void* a = device_alloc<char>(bytes, "copy source");
    void* b = device_alloc<char>(bytes, "copy target");
    check(cudaMemset(a, 1, bytes), "cudaMemset");
    copy_bw = copy_gbps(a, b, bytes, 10);
    cudaFree(a);
    cudaFree(b);
    std::printf("device-to-device cudaMemcpy of 1 GiB: %.0f GB/s (read + write)\n", copy_bw);
  }
  std::mt19937 rng(1234);
  int failed = 0, ran = 0;
  for (const Config& c : configs()) {
    if (!opt.only.empty() && std::string(c.name).find(opt.only) == std::string::npos) continue;
    bool ok = false;
    try {
      switch (c.dtype) {
        case DType::f16: ok = run_config<__half>(c, opt, rng, flush, flush_bytes, copy_bw); break;
        case DType::bf16: ok = run_config<__nv_bfloat16>(c, opt, rng, flush, flush_bytes, copy_bw); break;
        case DType::f8e4m3: ok = run_config<__nv_fp8_e4m3>(c, opt, rng, flush, flush_bytes, copy_bw); break;
        default: ok = run_config<float>(c, opt, rng, flush, flush_bytes, copy_bw); break;
      }
    } catch (const std::exception& e) {
      std::printf("%-46s error: %s\n", c.name, e.what());
    }
    ++ran;
    if (!ok) ++failed;
  }
  for (const PrefillConfig& c : prefill_configs()) {
    if (!opt.only.empty() && std::string(c.name).find(opt.only) == std::string::npos) continue;
    bool ok = false;
    try {
      switch (c.kv_dtype) {
        case DType::f16: ok = run_prefill_config<__half>(c, opt, rng, flush, flush_bytes); break;
        case DType::bf16: ok = run_prefill_config<__nv_bfloat16>(c, opt, rng, flush, flush_bytes); break;
        case DType::f8e4m3: ok = run_prefill_config<__nv_fp8_e4m3>(c, opt, rng, flush, flush_bytes); break;
        default: ok = run_prefill_config<float>(c, opt, rng, flush, flush_bytes); break;
      }
    } catch (const std::exception& e) {
      std::printf("%-46s error: %s\n", c.name, e.what());
    }
    ++ran;
    if (!ok) ++failed;
  }
  std::printf("%d configurations, %d failed (tolerance %.0e, tensor cores %.0e, %.1e with bf16)\n", ran, failed,
              kTolerance, kMmaTolerance, kMmaToleranceBf16);
  cudaFree(flush);
  return failed ? 1 : 0;
}
