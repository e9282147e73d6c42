#include "runtime/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/checksum.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_gemm.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/op_profile.h"

namespace kiln::runtime {
namespace {

using cuda::check;

// Device memory, freed with the last owner.
std::shared_ptr<void> device_alloc(std::size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, std::max<std::size_t>(bytes, 256));
  if (status != cudaSuccess) {
    cudaGetLastError();
    std::size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    throw_error("CUDA out of memory: ", what, " needs ", (bytes + (1 << 20) - 1) >> 20, " MiB, ", free >> 20,
                " MiB of ", total >> 20, " MiB free (", cudaGetErrorString(status), ")");
  }
  return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

class DeviceBuffer final : public Buffer {
 public:
  explicit DeviceBuffer(int64_t n)
      : memory_(device_alloc(static_cast<std::size_t>(n) * sizeof(float), "activations")), size_(n) {}
  float* data() override { return static_cast<float*>(memory_.get()); }
  int64_t size() const override { return size_; }

 private:
  std::shared_ptr<void> memory_;
  int64_t size_;
};

// A device array that grows to the largest size asked for (step metadata,
// converted operands). Reuse is safe: every use is ordered on the one stream.
// It grows by powers of two, and counts each move in `generation` (recorded
// steps hold its address, and are recorded again after it moves); buffers no
// recorded step uses pass null.
class Scratch {
 public:
  explicit Scratch(int64_t* generation) : generation_(generation) {}
  void* get(std::size_t bytes, const char* what) {
    if (bytes > bytes_) {
      std::size_t size = 4096;
      while (size < bytes) size *= 2;
      memory_.reset();
      memory_ = device_alloc(size, what);
      bytes_ = size;
      if (generation_) ++*generation_;
    }
    return memory_.get();
  }
  template <typename T>
  T* upload(const std::vector<T>& host, cudaStream_t stream, const char* what) {
    auto* p = static_cast<T*>(get(host.size() * sizeof(T), what));
    // Pageable source: the driver stages it before returning, so `host` may go away.
    check(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream), what);
    return p;
  }

 private:
  std::shared_ptr<void> memory_;
  std::size_t bytes_ = 0;
  int64_t* generation_;
};

// Page-locked host memory that grows to the largest size asked for: step
// metadata and results cross PCIe from and to it without a driver copy.
class PinnedBuffer {
 public:
  ~PinnedBuffer() {
    if (host_) cudaFreeHost(host_);
  }
  // The caller has waited for every copy from or to the old contents.
  void* get(std::size_t bytes) {
    if (bytes > bytes_) {
      if (host_) cudaFreeHost(host_), host_ = nullptr;
      std::size_t size = 4096;
      while (size < bytes) size *= 2;
      check(cudaMallocHost(&host_, size), "cudaMallocHost (step metadata)");
      bytes_ = size;
    }
    return host_;
  }

 private:
  void* host_ = nullptr;
  std::size_t bytes_ = 0;
};

// Pinned host buffers that weights pass through on their way to the device:
// the next chunk is copied out of the page cache while the last one crosses PCIe.
class UploadStaging {
 public:
  static constexpr std::size_t kChunk = std::size_t{64} << 20;

  ~UploadStaging() {
    for (auto& s : stages_) {
      if (s.done) cudaEventSynchronize(s.done), cudaEventDestroy(s.done);
      if (s.host) cudaFreeHost(s.host);
    }
  }

  void copy(void* device, const void* host, std::size_t bytes, cudaStream_t stream) {
    for (std::size_t off = 0; off < bytes; off += kChunk) {
      const std::size_t n = std::min(kChunk, bytes - off);
      Stage& s = stages_[next_];
      next_ = (next_ + 1) % stages_.size();
      if (!s.host) {
        check(cudaMallocHost(&s.host, kChunk), "cudaMallocHost (weight staging)");
        check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "cudaEventCreate");
      } else {
        check(cudaEventSynchronize(s.done), "weight upload");
      }
      parallel_copy(static_cast<char*>(s.host), static_cast<const char*>(host) + off, n);
      check(cudaMemcpyAsync(static_cast<char*>(device) + off, s.host, n, cudaMemcpyHostToDevice, stream),
            "weight upload");
      check(cudaEventRecord(s.done, stream), "cudaEventRecord");
    }
  }

 private:
  struct Stage {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };
  static void parallel_copy(char* dst, const char* src, std::size_t n) {
    constexpr std::size_t kPiece = std::size_t{4} << 20;
    const auto pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
    ThreadPool::global().parallel_for(pieces, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const std::size_t at = static_cast<std::size_t>(i) * kPiece;
        std::memcpy(dst + at, src + at, std::min(kPiece, n - at));
      }
    });
  }
  std::array<Stage, 2> stages_{};
  std::size_t next_ = 0;
};

// engine::ChunkChecksum's constants as the device kernel takes them.
const cuda::ChecksumKeys& checksum_keys() {
  static const cuda::ChecksumKeys keys = [] {
    using engine::ChunkChecksum;
    static_assert(ChunkChecksum::kLanes == 8 && ChunkChecksum::kStripesPerBlock == 16);
    cuda::ChecksumKeys k{};
    const ChunkChecksum::Keys& format = ChunkChecksum::keys();
    std::memcpy(k.stripe, format.stripe, sizeof k.stripe);
    std::memcpy(k.scramble, format.scramble, sizeof k.scramble);
    std::copy_n(ChunkChecksum::kInitial, ChunkChecksum::kLanes, k.initial);
    k.multiplier = ChunkChecksum::kScrambleMultiplier;
    return k;
  }();
  return keys;
}

const float* f32(const Weight& w) {
  if (w.dtype != DType::f32) throw_error("internal: expected an fp32 weight, got ", dtype_name(w.dtype));
  return static_cast<const float*>(w.data);
}

class CudaBackend final : public Backend {
 public:
  // kv_dtype: the engine's dtype, or f8e4m3 for an FP8 KV cache.
  CudaBackend(DType dtype, DType kv_dtype, GemmPlan gemm_plan) : kv_dtype_(kv_dtype), compute_dtype_(dtype) {
    std::string why;
    if (!cuda_device_target(&why)) throw_error("the CUDA target needs an NVIDIA GPU: ", why);
    check(cudaSetDevice(0), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cublasCreate(&cublas_), "cublasCreate");
    check(cublasSetStream(cublas_, stream_), "cublasSetStream");
    // fp32 engines are held to fp32 accuracy: no TF32 in their products.
    check(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    // A workspace of our own: cuBLAS then allocates nothing while a step is recorded.
    cublas_workspace_ = device_alloc(kCublasWorkspace, "the cuBLAS workspace");
    check(cublasSetWorkspace(cublas_, cublas_workspace_.get(), kCublasWorkspace), "cublasSetWorkspace");
    check(cudaEventCreateWithFlags(&step_copied_, cudaEventDisableTiming), "cudaEventCreate");
    // KILN_CUDA_GRAPHS=0 runs every step op by op (for comparison and debugging).
    const char* graphs = std::getenv("KILN_CUDA_GRAPHS");
    graphs_enabled_ = !(graphs && std::string_view(graphs) == "0") && !profile_.enabled();
    // KILN_CUDA_PREFILL=cores keeps 16-bit prefill attention on CUDA cores (for comparison).
    const char* prefill = std::getenv("KILN_CUDA_PREFILL");
    prefill_on_tensor_cores_ = !(prefill && std::string_view(prefill) == "cores");
    // KILN_CUDA_FP8_GEMM=off: FP8 weights above the gemv's rows run as
    // dequantized 16-bit products (activations unquantized), for comparison.
    const char* fp8_gemm = std::getenv("KILN_CUDA_FP8_GEMM");
    fp8_gemm_ = !(fp8_gemm && std::string_view(fp8_gemm) == "off");
    // KILN_CUDA_FP8_GEMV=f32: decode's FP8 products on the fp32 gemv (weights
    // converted in the kernel, activations unquantized), for comparison.
    const char* fp8_gemv = std::getenv("KILN_CUDA_FP8_GEMV");
    fp8_gemv_ = !(fp8_gemv && std::string_view(fp8_gemv) == "f32");
    // KILN_CUDA_FP8_FUSE=0: the norm and the gated activation before an FP8
    // product write fp32 and a separate pass quantizes it, for comparison.
    const char* fp8_fuse = std::getenv("KILN_CUDA_FP8_FUSE");
    fp8_fuse_ = !(fp8_fuse && std::string_view(fp8_fuse) == "0");
    gemm_ = std::make_unique<cuda::CudaGemm>(stream_, std::move(gemm_plan));
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (auto& [key, r] : recordings_) {
      if (r.exec) cudaGraphExecDestroy(r.exec);
    }
    cudaEventDestroy(step_copied_);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }
  bool copies_weights() const override { return true; }

  Weight upload(const TensorView& host) override {
    const std::size_t bytes = static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype);
    auto memory = device_alloc(bytes, "weights");
    staging_.copy(memory.get(), host.data, bytes, stream_);
    return Weight{host.dtype, host.shape, memory.get(), memory, nullptr, nullptr};
  }

  std::vector<uint64_t> checksum_uploaded(const std::vector<UploadedPiece>& pieces) override {
    if (pieces.empty()) return {};
    // The uploads first, so that the time logged below is the hashing's alone.
    check(cudaStreamSynchronize(stream_), "weight upload");
    const auto started = std::chrono::steady_clock::now();
    std::vector<cuda::ChecksumPiece> table;
    std::vector<cuda::ChecksumSpan> spans;
    for (const UploadedPiece& p : pieces) {
      table.push_back({p.size, static_cast<uint32_t>(spans.size()), static_cast<uint32_t>(p.spans.size())});
      for (const UploadedSpan& s : p.spans) {
        spans.push_back({s.offset, s.nbytes, static_cast<const unsigned char*>(s.data)});
      }
    }
    const std::size_t table_bytes = table.size() * sizeof table[0], span_bytes = spans.size() * sizeof spans[0];
    const std::size_t lanes_count = pieces.size() * engine::ChunkChecksum::kLanes;
    auto memory = device_alloc(table_bytes + span_bytes + lanes_count * 8, "weight checksums");
    auto* d_table = static_cast<cuda::ChecksumPiece*>(memory.get());
    auto* d_spans = reinterpret_cast<cuda::ChecksumSpan*>(static_cast<char*>(memory.get()) + table_bytes);
    auto* d_lanes = reinterpret_cast<uint64_t*>(static_cast<char*>(memory.get()) + table_bytes + span_bytes);
    check(cudaMemcpyAsync(d_table, table.data(), table_bytes, cudaMemcpyHostToDevice, stream_), "checksum table");
    if (span_bytes > 0) {
      check(cudaMemcpyAsync(d_spans, spans.data(), span_bytes, cudaMemcpyHostToDevice, stream_), "checksum spans");
    }
    cuda::checksum_lanes(d_table, static_cast<int64_t>(table.size()), d_spans, checksum_keys(), d_lanes, stream_);
    std::vector<uint64_t> lanes(lanes_count);
    check(cudaMemcpyAsync(lanes.data(), d_lanes, lanes_count * 8, cudaMemcpyDeviceToHost, stream_), "checksums");
    check(cudaStreamSynchronize(stream_), "weight checksums");
    uint64_t bytes = 0;
    for (const UploadedPiece& p : pieces) bytes += p.size;
    log_info("weights hashed on the GPU: ", pieces.size(), " chunks, ", bytes >> 20, " MiB in ",
             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(), " ms");
    std::vector<uint64_t> digests;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      uint64_t piece_lanes[engine::ChunkChecksum::kLanes];
      std::copy_n(lanes.begin() + static_cast<std::ptrdiff_t>(i * engine::ChunkChecksum::kLanes),
                  engine::ChunkChecksum::kLanes, piece_lanes);
      digests.push_back(engine::ChunkChecksum::finish(piece_lanes, pieces[i].size));
    }
    return digests;
  }

  std::unique_ptr<Buffer> allocate(int64_t floats) override {
    ++generation_;
    return std::make_unique<DeviceBuffer>(floats);
  }

  void allocate_kv(const KvCacheConfig& c, int rank) override {
    if (static_cast<int>(kv_.size()) <= rank) kv_.resize(static_cast<std::size_t>(rank) + 1);
    RankKv& kv = kv_[static_cast<std::size_t>(rank)];
    kv = RankKv{};  // free the old cache first
    ++generation_;
    kv.layer_values = c.num_blocks * c.block_size * c.kv_heads * c.head_dim;
    const std::size_t bytes = static_cast<std::size_t>(c.num_layers * kv.layer_values) * dtype_size(kv_dtype_);
    kv.keys = device_alloc(bytes, "the KV cache's keys");
    kv.values = device_alloc(bytes, "the KV cache's values");
  }

  int64_t kv_bytes_per_value() const override { return static_cast<int64_t>(dtype_size(kv_dtype_)); }

  std::optional<int64_t> kv_cache_budget(double fraction) const override {
    std::size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    // As vLLM's gpu_memory_utilization: the process may use `fraction` of the
    // card; what is in use now (weights, other processes) and a workspace
    // reserve for activations and cuBLAS come off first.
    constexpr int64_t kWorkspace = int64_t{2} << 30;
    const auto allowed = static_cast<int64_t>(static_cast<double>(total) * fraction);
    const auto used = static_cast<int64_t>(total - free);
    return std::max<int64_t>(0, allowed - used - kWorkspace);
  }

  void prepare_step(const StepInput& input) override {
    const auto& positions = input.positions;
    rows_ = static_cast<int64_t>(positions.size());
    profile_.set_step_rows(rows_);
    logit_count_ = static_cast<int64_t>(input.logit_rows.size());
    std::vector<int32_t> offsets(positions.size()), tables;
    for (const auto& s : input.seqs) {
      const auto offset = static_cast<int32_t>(tables.size());
      tables.insert(tables.end(), s.kv->blocks.begin(), s.kv->blocks.end());
      for (int64_t t = 0; t < s.count; ++t) offsets[static_cast<std::size_t>(s.row + t)] = offset;
    }
    if (tables.empty()) tables.push_back(0);
    // Decode rows (sequences with one new token) go to the per-row kernel;
    // prompt chunks to the tiled prefill kernel, in tiles of consecutive rows.
    std::vector<int32_t> decode_rows;
    std::vector<cuda::QueryTile> tiles;
    for (const auto& s : input.seqs) {
      if (s.count == 1) {
        decode_rows.push_back(static_cast<int32_t>(s.row));
        continue;
      }
      for (int64_t t = 0; t < s.count; t += cuda::kPrefillTile) {
        tiles.push_back({static_cast<int32_t>(s.row + t),
                         static_cast<int32_t>(std::min<int64_t>(cuda::kPrefillTile, s.count - t))});
      }
    }
    decode_count_ = static_cast<int64_t>(decode_rows.size());
    tile_count_ = static_cast<int64_t>(tiles.size());

    // One copy for all of it: the arrays sized by the row count come first, so
    // a decode step of a given batch size finds each at the same address (what
    // a recorded step reads), and the block tables, whose length varies, last.
    std::size_t words = 0;
    auto place = [&](std::size_t n, std::size_t align) {
      words = (words + align - 1) / align * align;
      const std::size_t at = words;
      words += n;
      return at;
    };
    const std::size_t n_rows = positions.size();
    const std::size_t at_tokens = place(n_rows, 1), at_positions = place(n_rows, 1), at_offsets = place(n_rows, 1);
    const std::size_t at_logit_rows = place(2 * input.logit_rows.size(), 2);
    const std::size_t at_decode = place(decode_rows.size(), 1), at_tiles = place(2 * tiles.size(), 2);
    const std::size_t at_tables = place(tables.size(), 1);
    check(cudaEventSynchronize(step_copied_), "the last step's metadata copy");
    auto* host = static_cast<int32_t*>(step_host_.get(words * 4));
    auto put = [&](std::size_t at, const void* src, std::size_t bytes) {
      if (bytes) std::memcpy(host + at, src, bytes);
    };
    put(at_tokens, input.tokens.data(), n_rows * 4);
    put(at_positions, positions.data(), n_rows * 4);
    put(at_offsets, offsets.data(), n_rows * 4);
    put(at_logit_rows, input.logit_rows.data(), input.logit_rows.size() * 8);
    put(at_decode, decode_rows.data(), decode_rows.size() * 4);
    put(at_tiles, tiles.data(), tiles.size() * 8);
    put(at_tables, tables.data(), tables.size() * 4);
    auto* device = static_cast<int32_t*>(step_device_.get(words * 4, "step metadata"));
    check(cudaMemcpyAsync(device, host, words * 4, cudaMemcpyHostToDevice, stream_), "step metadata upload");
    check(cudaEventRecord(step_copied_, stream_), "cudaEventRecord");
    tokens_ = device + at_tokens;
    logit_rows_ = reinterpret_cast<const int64_t*>(device + at_logit_rows);
    decode_rows_ = decode_count_ == rows_ ? nullptr : device + at_decode;
    tiles_ = tile_count_ ? reinterpret_cast<const cuda::QueryTile*>(device + at_tiles) : nullptr;
    step_.positions = device + at_positions;
    step_.table_offset = device + at_offsets;
    step_.block_tables = device + at_tables;
  }

  void run_recorded(int64_t key, const std::function<void()>& ops) override {
    if (!graphs_enabled_) return ops();
    Recording& r = recordings_[key];
    if (r.exec && r.generation == generation_) {
      check(cudaGraphLaunch(r.exec, stream_), "cudaGraphLaunch (a recorded decode step)");
      return;
    }
    if (r.exec) cudaGraphExecDestroy(r.exec), r.exec = nullptr;
    // The first time (or after a buffer moved) the step runs op by op, which
    // sizes every buffer it uses; the next one is recorded.
    if (r.warmed != generation_) {
      ops();
      r.warmed = generation_;
      return;
    }
    const int64_t before = generation_;
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
      ops();
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    if (generation_ != before) {
      // A buffer moved while recording: nothing ran yet, so run op by op.
      cudaGraphDestroy(graph);
      r.warmed = generation_;
      return ops();
    }
    const cudaError_t made = cudaGraphInstantiate(&r.exec, graph, 0);
    cudaGraphDestroy(graph);
    check(made, "cudaGraphInstantiate (a decode step)");
    r.generation = generation_;
    check(cudaGraphLaunch(r.exec, stream_), "cudaGraphLaunch (a recorded decode step)");
  }

  void embed(const Weight& table, float* out) override {
    cuda::embed(table.data, table.dtype, table.cols(), tokens_, rows_, out, stream_);
  }

  void add_positions(const Weight& table, float* x) override {
    cuda::add_rows(table.data, table.dtype, table.cols(), step_.positions, rows_, x, stream_);
  }

  void norm(NormKind kind, const float* x, const Weight& weight, const Weight* bias, double eps, int64_t rows,
            float* out) override {
    auto timed = profile_.scope("norm", stream_);
    if (kind == NormKind::rms) {
      cuda::rms_norm(x, f32(weight), static_cast<float>(eps), rows, weight.rows(), out, stream_);
    } else {
      cuda::layer_norm(x, f32(weight), bias ? f32(*bias) : nullptr, static_cast<float>(eps), rows, weight.rows(), out,
                       stream_);
    }
  }

  void linear(const float* x, int64_t rows, const Weight& w, const Weight* bias, float* out, bool accumulate) override {
    const int64_t n = w.rows(), k = w.cols();
    const float* b = bias ? f32(*bias) : nullptr;
    if (fp8_product_runs(rows, w, out)) {
      fp8_product(quantized(x, rows, k), rows, w, b, out, accumulate);
      return;
    }
    if (rows <= cuda::kGemvMaxRows) {
      auto timed = profile_.scope("gemv", stream_);
      cuda::gemv(x, rows, w.data, w.dtype, k, n, b, out, accumulate, stream_, nullptr, w.scale);
      return;
    }
    if (w.dtype == DType::f8e4m3) {
      // No E4M3 product for this shape (or KILN_CUDA_FP8_GEMM=off): the
      // 16-bit product of the weight's dequantized copy.
      Weight wide = w;
      wide.dtype = compute_dtype_;
      wide.scale = nullptr;
      {
        auto timed = profile_.scope("dequantize", stream_);
        wide.data = dequantized_.get(static_cast<std::size_t>(n * k) * 2, "dequantized FP8 weights");
        cuda::dequantize_e4m3(w.data, w.scale, n, k, compute_dtype_, const_cast<void*>(wide.data), stream_);
      }
      linear(x, rows, wide, bias, out, accumulate);
      return;
    }
    // Row-major out[rows, n] = x[rows, k] * W[n, k]^T is column-major
    // out^T[n, rows] = W^T * x^T with W seen as a column-major [k, n] matrix.
    const float one = 1.f, beta = accumulate ? 1.f : 0.f;
    auto timed = profile_.scope("gemm", stream_);
    if (w.dtype == DType::f32) {
      check(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(rows),
                        static_cast<int>(k), &one, static_cast<const float*>(w.data), static_cast<int>(k), x,
                        static_cast<int>(k), &beta, out, static_cast<int>(n)),
            "cublasSgemm");
    } else {
      void* x16 = operand_.get(static_cast<std::size_t>(rows * k) * 2, "a converted GEMM operand");
      cuda::convert_from_f32(x, rows * k, w.dtype, x16, stream_);
      if (!gemm_->run(x16, w.data, w.dtype, rows, n, k, out, accumulate)) {
        const cudaDataType_t type = w.dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
        check(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(rows),
                           static_cast<int>(k), &one, w.data, type, static_cast<int>(k), x16, type, static_cast<int>(k),
                           &beta, out, CUDA_R_32F, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
      }
    }
    if (b) cuda::add_bias(out, b, rows, n, stream_);
  }

  void norm_linear(NormKind kind, const float* x, const Weight& norm_weight, const Weight* norm_bias, double eps,
                   int64_t rows, const Weight& w, const Weight* bias, float* normed, float* out) override {
    if (fp8_product_runs(rows, w, out)) {
      if (kind != NormKind::rms || !fp8_fuse_ || !cuda::fused_quantize_supported(w.cols())) {
        Backend::norm_linear(kind, x, norm_weight, norm_bias, eps, rows, w, bias, normed, out);
        return;
      }
      const Fp8Input q = quantized(x, rows, w.cols(), f32(norm_weight), eps);
      fp8_product(q, rows, w, bias ? f32(*bias) : nullptr, out, false);
      return;
    }
    if (kind != NormKind::rms || !cuda::rms_norm_gemv_supported(rows, w.cols())) {
      Backend::norm_linear(kind, x, norm_weight, norm_bias, eps, rows, w, bias, normed, out);
      return;
    }
    auto timed = profile_.scope("norm+gemv", stream_);
    cuda::rms_norm_gemv(x, rows, f32(norm_weight), static_cast<float>(eps), w.data, w.dtype, w.cols(), w.rows(),
                        bias ? f32(*bias) : nullptr, out, stream_, w.scale);
  }

  void attention(int rank, int64_t layer, float* qkv, const std::vector<int32_t>& positions,
                 const std::vector<StepSequence>& seqs, const KvCacheConfig& kv, const AttentionParams& p,
                 float* out) override {
    int64_t rows = 0;
    for (const auto& s : seqs) rows += s.count;
    check_step_rows(static_cast<std::size_t>(rows));
    check_step_rows(positions.size());
    cuda::Rotary rotary;
    if (p.rope) {
      const RopeTable& table = *p.rope_table;
      const DeviceRope& r = rope_table(table);
      rotary = {static_cast<const float*>(r.cos.get()), static_cast<const float*>(r.sin.get()),
                static_cast<int>(table.half), p.rope->style == RopeStyle::neox};
    }
    cuda::AttentionShape shape;
    shape.rows = static_cast<int>(rows_);
    shape.num_heads = static_cast<int>(p.num_heads);
    shape.num_kv_heads = static_cast<int>(p.num_kv_heads);
    shape.head_dim = static_cast<int>(p.head_dim);
    shape.sliding_window = static_cast<int>(p.sliding_window);
    // The engine's context, not the step's lengths, sizes the decode kernel's partitions.
    const int32_t last = positions.empty() ? 0 : *std::max_element(positions.begin(), positions.end());
    shape.max_context = static_cast<int>(std::max<int64_t>(p.max_context, int64_t{last} + 1));
    if (p.alibi_slopes) {
      if (p.alibi_slopes->size() > static_cast<std::size_t>(cuda::kMaxAlibiHeads)) {
        throw_error("the CUDA backend takes ALiBi models with up to ", cuda::kMaxAlibiHeads, " heads per rank");
      }
      shape.alibi = true;
      std::copy(p.alibi_slopes->begin(), p.alibi_slopes->end(), shape.alibi_slopes);
    }
    cuda::StepRows step = step_;
    step.block_size = static_cast<int>(kv.block_size);
    const RankKv& cache = kv_.at(static_cast<std::size_t>(rank));
    const std::size_t offset = static_cast<std::size_t>(layer * cache.layer_values) * dtype_size(kv_dtype_);
    void* keys = static_cast<char*>(cache.keys.get()) + offset;
    void* values = static_cast<char*>(cache.values.get()) + offset;
    {
      auto timed = profile_.scope("rope_kv_write", stream_);
      cuda::rope_kv_write(qkv, shape, step, rotary, keys, values, kv_dtype_, stream_);
    }
    if (!cuda::prefill_attention_supports(shape.head_dim)) {
      auto timed = profile_.scope("attention", stream_);
      cuda::attention(qkv, shape, step, nullptr, keys, values, kv_dtype_, out, attention_workspace(shape), stream_);
      return;
    }
    if (tile_count_ > 0) {
      auto timed = profile_.scope("prefill_attention", stream_);
      if (prefill_on_tensor_cores_ && cuda::prefill_attention_mma_supports(shape.head_dim, kv_dtype_, compute_dtype_)) {
        cuda::prefill_attention_mma(qkv, shape, step, tiles_, static_cast<int>(tile_count_), keys, values, kv_dtype_,
                                    compute_dtype_, out, stream_);
      } else {
        cuda::prefill_attention(qkv, shape, step, tiles_, static_cast<int>(tile_count_), keys, values, kv_dtype_, out,
                                stream_);
      }
    }
    if (decode_count_ > 0) {
      auto timed = profile_.scope("attention", stream_);
      cuda::AttentionShape decode = shape;
      decode.rows = static_cast<int>(decode_count_);
      cuda::attention(qkv, decode, step, decode_rows_, keys, values, kv_dtype_, out, attention_workspace(decode),
                      stream_);
    }
  }

  void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) override {
    auto timed = profile_.scope("activation", stream_);
    cuda::gated_activation(act, gate_up, rows, inner, out, stream_);
  }

  void gated_mlp(Activation act, const float* x, int64_t rows, const NormArgs* norm, const Weight& gate_up,
                 const Weight& down, float* normed, float* gate_up_out, float* act_out, float* out,
                 bool accumulate) override {
    const int64_t k = gate_up.cols(), inner = gate_up.rows() / 2;
    const bool fused = fp8_fuse_ && fp8_product_runs(rows, gate_up, gate_up_out) && fp8_product_runs(rows, down, out) &&
                       cuda::fused_quantize_supported(inner) &&
                       (!norm || (norm->kind == NormKind::rms && cuda::fused_quantize_supported(k)));
    if (!fused) {
      Backend::gated_mlp(act, x, rows, norm, gate_up, down, normed, gate_up_out, act_out, out, accumulate);
      return;
    }
    // E4M3 in, E4M3 between the projections: the norm (or a quantize pass)
    // writes gate_up's operand, the activation writes down's.
    const Fp8Input in = quantized(x, rows, k, norm ? f32(*norm->weight) : nullptr, norm ? norm->eps : 0, inner);
    // Above the gemv's rows gate_up's product stays unscaled where cuBLASLt
    // cannot scale it: the activation applies both scales as it reads it,
    // which saves the separate pass over rows x 2 inner floats.
    bool unscaled = false;
    if (rows > cuda::kGemvMaxRows) {
      auto timed = profile_.scope("gemm_fp8", stream_);
      unscaled = gemm_->run_unscaled(in.values, gate_up.data, DType::f8e4m3, rows, gate_up.rows(), k, gate_up_out);
    }
    if (!unscaled) fp8_product(in, rows, gate_up, nullptr, gate_up_out, false);
    // down's operand in the same values (the stream runs gate_up's product
    // first), its scales beside the first's.
    const Fp8Input mid{in.values, in.scales + rows};
    {
      auto timed = profile_.scope("activation+quantize", stream_);
      cuda::gated_activation_quantize_e4m3(act, gate_up_out, rows, inner, mid.values, mid.scales, stream_,
                                           unscaled ? in.scales : nullptr, unscaled ? gate_up.scale : nullptr);
    }
    fp8_product(mid, rows, down, nullptr, out, accumulate);
  }

  void activation(Activation act, float* x, int64_t n) override { cuda::activation(act, x, n, stream_); }
  void add(float* x, const float* y, int64_t n) override { cuda::add(x, y, n, stream_); }
  void fill(float* x, float value, int64_t n) override { cuda::fill(x, value, n, stream_); }

  void scale_add_rows(const float* src, const std::vector<int64_t>& rows, const std::vector<float>& weights,
                      int64_t cols, float* out) override {
    const int64_t* d_rows = moe_rows_.upload(rows, stream_, "expert rows");
    const float* d_weights = moe_weights_.upload(weights, stream_, "expert weights");
    cuda::scale_add_rows(src, d_rows, d_weights, static_cast<int64_t>(rows.size()), cols, out, stream_);
  }

  void add_bias(float* x, const Weight& bias, int64_t rows) override {
    cuda::add_bias(x, f32(bias), rows, bias.rows(), stream_);
  }

  void route_experts(const float* router_logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize,
                     float* weights, float* used) override {
    cuda::route_experts(router_logits, rows, experts, top_k, normalize, weights, used, stream_);
  }

  void linear_if(const float* flag, const float* x, int64_t rows, const Weight& w, const Weight* bias, float* out,
                 bool accumulate) override {
    if (rows <= cuda::kGemvMaxRows) {
      auto timed = profile_.scope("gemv", stream_);
      cuda::gemv(x, rows, w.data, w.dtype, w.cols(), w.rows(), bias ? f32(*bias) : nullptr, out, accumulate, stream_,
                 flag, w.scale);
      return;
    }
    // Larger products ask the host (the graph routes only decode steps here).
    float host = 0.f;
    copy_to_host(flag, 1, &host);
    if (host != 0.f) linear(x, rows, w, bias, out, accumulate);
  }

  void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows,
                    int64_t cols, float* x) override {
    cuda::scale_add_if(flag, src, weights, stride, rows, cols, x, stream_);
  }

  void gather_rows(const float* x, const std::vector<int64_t>& rows, int64_t cols, float* out) override {
    const int64_t* d_rows = gather_rows_.upload(rows, stream_, "gathered rows");
    cuda::gather_rows(x, d_rows, static_cast<int64_t>(rows.size()), cols, out, stream_);
  }

  void gather_logit_rows(const float* x, int64_t cols, float* out) override {
    cuda::gather_rows(x, logit_rows_, logit_count_, cols, out, stream_);
  }

  void logits_summary(const float* logits, int64_t rows, int64_t vocab) override {
    // One device array of 3 x rows words: argmax, max, log-sum-exp.
    summary_rows_ = rows;
    auto* d = static_cast<char*>(summary_.get(static_cast<std::size_t>(rows) * 12, "logit summaries"));
    const std::size_t n = static_cast<std::size_t>(rows) * 4;
    auto timed = profile_.scope("logits_summary", stream_);
    cuda::logits_summary(logits, rows, vocab, reinterpret_cast<int32_t*>(d), reinterpret_cast<float*>(d + n),
                         reinterpret_cast<float*>(d + 2 * n), stream_);
  }

  void read_logits_summary(int32_t* argmax, float* max_logit, float* log_sum_exp) override {
    const std::size_t n = static_cast<std::size_t>(summary_rows_) * 4;
    auto* host = static_cast<char*>(summary_host_.get(3 * n));
    check(cudaMemcpyAsync(host, summary_.get(3 * n, "logit summaries"), 3 * n, cudaMemcpyDeviceToHost, stream_),
          "copy to host");
    check(cudaStreamSynchronize(stream_), "the step's kernels");
    profile_.collect();
    std::memcpy(argmax, host, n);
    std::memcpy(max_logit, host + n, n);
    std::memcpy(log_sum_exp, host + 2 * n, n);
  }

  void sample(const float* logits, int64_t vocab, const std::vector<SampleRow>& choices, int32_t* tokens,
              float* chosen_logits) override {
    std::vector<cuda::SampleChoice> list;
    std::vector<std::size_t> where;
    std::vector<int32_t> history;
    for (std::size_t r = 0; r < choices.size(); ++r) {
      const SampleRow& c = choices[r];
      if (!c.params) continue;
      cuda::SampleChoice d;
      d.row = static_cast<int32_t>(r);
      d.greedy = c.params->greedy ? 1 : 0;
      d.temperature = c.params->temperature;
      d.top_p = c.params->top_p;
      d.top_k = static_cast<int32_t>(std::min<int64_t>(c.params->top_k, vocab));
      d.uniform = c.uniform;
      d.penalty = static_cast<float>(c.params->repetition_penalty);
      d.history_begin = static_cast<int32_t>(history.size());
      if (c.history && d.penalty != 1.f) history.insert(history.end(), c.history->begin(), c.history->end());
      d.history_end = static_cast<int32_t>(history.size());
      list.push_back(d);
      where.push_back(r);
    }
    if (history.empty()) history.push_back(0);
    const int32_t* d_history = sample_history_.upload(history, stream_, "sampling histories");
    // Rows in groups, so the sort's workspace stays a few hundred MiB at most.
    constexpr std::size_t kGroup = 64;
    for (std::size_t first = 0; first < list.size(); first += kGroup) {
      const std::size_t count = std::min(kGroup, list.size() - first);
      const std::vector<cuda::SampleChoice> group(list.begin() + static_cast<std::ptrdiff_t>(first),
                                                  list.begin() + static_cast<std::ptrdiff_t>(first + count));
      const auto* d_choices = sample_choices_.upload(group, stream_, "sampling parameters");
      void* workspace =
          sample_workspace_.get(cuda::sample_workspace_bytes(static_cast<int>(count), vocab), "the sampling sort");
      auto* d_out = static_cast<char*>(sample_out_.get(count * 8, "sampled tokens"));
      {
        auto timed = profile_.scope("sample", stream_);
        cuda::sample(logits, vocab, d_choices, static_cast<int>(count), d_history, workspace,
                     reinterpret_cast<int32_t*>(d_out), reinterpret_cast<float*>(d_out + count * 4), stream_);
      }
      auto* host = static_cast<char*>(sample_host_.get(count * 8));
      check(cudaMemcpyAsync(host, d_out, count * 8, cudaMemcpyDeviceToHost, stream_), "copy to host");
      check(cudaStreamSynchronize(stream_), "sampling");
      for (std::size_t i = 0; i < count; ++i) {
        std::memcpy(&tokens[where[first + i]], host + i * 4, 4);
        std::memcpy(&chosen_logits[where[first + i]], host + count * 4 + i * 4, 4);
      }
    }
    profile_.collect();
  }

  void copy_to_host(const float* device, int64_t n, float* host) override {
    check(cudaMemcpyAsync(host, device, static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_),
          "copy to host");
    // Kernel faults of the step surface here, named as such.
    check(cudaStreamSynchronize(stream_), "the step's kernels");
  }

 private:
  struct RankKv {
    std::shared_ptr<void> keys, values;  // [layer][slot][kv_head][head_dim]
    int64_t layer_values = 0;
  };
  struct DeviceRope {
    const RopeTable* table = nullptr;
    std::shared_ptr<void> cos, sin;
  };
  // A decode step's ops recorded as a CUDA graph, valid while no buffer it
  // uses has moved (generation_).
  struct Recording {
    cudaGraphExec_t exec = nullptr;
    int64_t generation = -1;
    int64_t warmed = -1;  // the generation of the last op-by-op run of this key
  };
  static constexpr std::size_t kCublasWorkspace = std::size_t{32} << 20;

  void check_step_rows(std::size_t rows) const {
    if (static_cast<int64_t>(rows) != rows_) throw_error("internal: the step has ", rows_, " rows, an op got ", rows);
  }

  float* attention_workspace(const cuda::AttentionShape& shape) {
    const int64_t floats = cuda::attention_workspace_floats(shape);
    if (floats == 0) return nullptr;
    return static_cast<float*>(
        attention_workspace_.get(static_cast<std::size_t>(floats) * sizeof(float), "the decode attention's workspace"));
  }

  const DeviceRope& rope_table(const RopeTable& table) {
    if (rope_.table != &table) {
      const std::size_t bytes = table.cos.size() * sizeof(float);
      rope_.cos = device_alloc(bytes, "the rotary table");
      rope_.sin = device_alloc(bytes, "the rotary table");
      check(cudaMemcpyAsync(rope_.cos.get(), table.cos.data(), bytes, cudaMemcpyHostToDevice, stream_), "rope upload");
      check(cudaMemcpyAsync(rope_.sin.get(), table.sin.data(), bytes, cudaMemcpyHostToDevice, stream_), "rope upload");
      rope_.table = &table;
      ++generation_;
    }
    return rope_;
  }

  // An FP8 product's input: rows x k E4M3 values and their row scales.
  struct Fp8Input {
    void* values;
    float* scales;
  };
  // Room for two sets of row scales: gated_mlp's second operand has its own
  // while the activation reads the first's.
  Fp8Input fp8_input(int64_t rows, int64_t k) {
    const std::size_t value_bytes = (static_cast<std::size_t>(rows * k) + 255) / 256 * 256;
    auto* p = static_cast<char*>(fp8_input_.get(value_bytes + 2 * static_cast<std::size_t>(rows) * sizeof(float),
                                                "a quantized product operand"));
    return {p, reinterpret_cast<float*>(p + value_bytes)};
  }

  // x as an FP8 product's input, RMS-normalized first where `rms_weight` is
  // given (the norm then writes the E4M3 values itself); room for `width`
  // values a row where that is more than k.
  Fp8Input quantized(const float* x, int64_t rows, int64_t k, const float* rms_weight = nullptr, double eps = 0,
                     int64_t width = 0) {
    const Fp8Input q = fp8_input(rows, std::max(k, width));
    if (rms_weight) {
      auto timed = profile_.scope("norm+quantize", stream_);
      cuda::rms_norm_quantize_e4m3(x, rms_weight, static_cast<float>(eps), rows, k, q.values, q.scales, stream_);
    } else {
      auto timed = profile_.scope("quantize", stream_);
      cuda::quantize_rows_e4m3(x, rows, k, q.values, q.scales, stream_);
    }
    return q;
  }

  // Whether `rows` rows times `w` run as an E4M3 product of quantized rows
  // (fp8_product): the tensor-core gemv up to its rows, cuBLASLt's E4M3 GEMM
  // above them.
  bool fp8_product_runs(int64_t rows, const Weight& w, const float* out) {
    if (w.dtype != DType::f8e4m3 || w.scale == nullptr) return false;
    if (rows <= cuda::kGemvMaxRows) return fp8_gemv_ && cuda::gemv_e4m3_supported(rows, w.cols());
    return fp8_gemm_ && gemm_->can_run(w.data, DType::f8e4m3, rows, w.rows(), w.cols(), out);
  }

  // out (+)= x * w^T (+ bias) for x quantized (fp8_input), where fp8_product_runs.
  void fp8_product(const Fp8Input& x, int64_t rows, const Weight& w, const float* bias, float* out, bool accumulate) {
    const int64_t n = w.rows(), k = w.cols();
    if (rows <= cuda::kGemvMaxRows) {
      auto timed = profile_.scope("gemv_fp8", stream_);
      cuda::gemv_e4m3(x.values, x.scales, rows, w.data, w.scale, k, n, bias, out, accumulate, stream_);
      return;
    }
    // Where the scales are applied after the product, an accumulating one
    // writes the unscaled product to scratch first.
    float* scratch = accumulate ? static_cast<float*>(operand_.get(static_cast<std::size_t>(rows * n) * sizeof(float),
                                                                   "an FP8 product's unscaled result"))
                                : nullptr;
    bool ran = false;
    {
      auto timed = profile_.scope("gemm_fp8", stream_);
      ran = gemm_->run(x.values, w.data, DType::f8e4m3, rows, n, k, out, accumulate, x.scales, w.scale, scratch);
    }
    if (!ran) throw_error("internal: an E4M3 product of ", rows, " x ", n, " x ", k, " did not run");
    if (bias) cuda::add_bias(out, bias, rows, n, stream_);
  }

  DType kv_dtype_;
  DType compute_dtype_;  // the engine's 16-bit dtype: what FP8 weights dequantize to
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::shared_ptr<void> cublas_workspace_;
  std::unique_ptr<cuda::CudaGemm> gemm_;  // 16-bit products above the gemv's rows
  cuda::OpProfile profile_;
  UploadStaging staging_;
  std::vector<RankKv> kv_;
  DeviceRope rope_;
  // Counts moves of any buffer a recorded step may hold the address of.
  int64_t generation_ = 0;
  bool graphs_enabled_ = true;
  bool fp8_gemm_ = true, fp8_gemv_ = true, fp8_fuse_ = true;
  bool prefill_on_tensor_cores_ = true;
  std::unordered_map<int64_t, Recording> recordings_;
  int64_t rows_ = 0, decode_count_ = 0, tile_count_ = 0, logit_count_ = 0, summary_rows_ = 0;
  cuda::StepRows step_;
  const int32_t* tokens_ = nullptr;
  const int64_t* logit_rows_ = nullptr;
  const int32_t* decode_rows_ = nullptr;  // null: every row decodes
  const cuda::QueryTile* tiles_ = nullptr;
  cudaEvent_t step_copied_ = nullptr;
  PinnedBuffer step_host_, summary_host_, sample_host_;
  // Used inside recorded decode steps: their moves invalidate the recordings.
  Scratch step_device_{&generation_}, operand_{&generation_}, summary_{&generation_}, dequantized_{&generation_},
      fp8_input_{&generation_};
  // Used only outside them (sampling, MoE steps routed on the host).
  Scratch moe_rows_{nullptr}, moe_weights_{nullptr}, gather_rows_{nullptr}, sample_history_{nullptr},
      sample_choices_{nullptr}, sample_workspace_{nullptr}, sample_out_{nullptr};
  Scratch attention_workspace_{&generation_};  // the decode attention's partial results
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(DType dtype, DType kv_dtype, GemmPlan gemm_plan) {
  return std::make_unique<CudaBackend>(dtype, kv_dtype, std::move(gemm_plan));
}

}  // namespace kiln::runtime
