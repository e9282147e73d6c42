#include "runtime/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "core/thread_pool.h"
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
class Scratch {
 public:
  void* get(std::size_t bytes, const char* what) {
    if (bytes > bytes_) {
      memory_ = device_alloc(bytes, what);
      bytes_ = bytes;
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

const float* f32(const Weight& w) {
  if (w.dtype != DType::f32) throw_error("internal: expected an fp32 weight, got ", dtype_name(w.dtype));
  return static_cast<const float*>(w.data);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(DType kv_dtype, GemmPlan gemm_plan) : kv_dtype_(kv_dtype) {
    std::string why;
    if (!cuda_device_target(&why)) throw_error("the CUDA target needs an NVIDIA GPU: ", why);
    check(cudaSetDevice(0), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cublasCreate(&cublas_), "cublasCreate");
    check(cublasSetStream(cublas_, stream_), "cublasSetStream");
    // fp32 engines are held to fp32 accuracy: no TF32 in their products.
    check(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    gemm_ = std::make_unique<cuda::CudaGemm>(stream_, std::move(gemm_plan));
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }

  Weight upload(const TensorView& host) override {
    const std::size_t bytes = static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype);
    auto memory = device_alloc(bytes, "weights");
    staging_.copy(memory.get(), host.data, bytes, stream_);
    return Weight{host.dtype, host.shape, memory.get(), memory};
  }

  std::unique_ptr<Buffer> allocate(int64_t floats) override { return std::make_unique<DeviceBuffer>(floats); }

  void allocate_kv(const KvCacheConfig& c, int rank) override {
    if (static_cast<int>(kv_.size()) <= rank) kv_.resize(static_cast<std::size_t>(rank) + 1);
    RankKv& kv = kv_[static_cast<std::size_t>(rank)];
    kv = RankKv{};  // free the old cache first
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

  void prepare_step(const std::vector<int32_t>& positions, const std::vector<StepSequence>& seqs) override {
    rows_ = static_cast<int64_t>(positions.size());
    std::vector<int32_t> offsets(positions.size()), tables;
    for (const auto& s : seqs) {
      const auto offset = static_cast<int32_t>(tables.size());
      tables.insert(tables.end(), s.kv->blocks.begin(), s.kv->blocks.end());
      for (int64_t t = 0; t < s.count; ++t) offsets[static_cast<std::size_t>(s.row + t)] = offset;
    }
    if (tables.empty()) tables.push_back(0);
    // Decode rows (sequences with one new token) go to the per-row kernel;
    // prompt chunks to the tiled prefill kernel, in tiles of consecutive rows.
    std::vector<int32_t> decode_rows;
    std::vector<cuda::QueryTile> tiles;
    for (const auto& s : seqs) {
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
    decode_rows_ = decode_count_ == rows_ ? nullptr : decode_rows_buffer_.upload(decode_rows, stream_, "decode rows");
    tiles_ = tile_count_ ? tiles_buffer_.upload(tiles, stream_, "query tiles") : nullptr;
    step_.positions = positions_.upload(positions, stream_, "step positions");
    step_.table_offset = offsets_.upload(offsets, stream_, "step block-table offsets");
    step_.block_tables = tables_.upload(tables, stream_, "step block tables");
  }

  void embed(const Weight& table, const std::vector<int32_t>& ids, float* out) override {
    for (const int32_t id : ids) {
      if (id < 0 || id >= table.rows()) throw_error("token id ", id, " is outside the vocabulary (", table.rows(), ")");
    }
    const int32_t* d_ids = ids_.upload(ids, stream_, "token ids");
    cuda::embed(table.data, table.dtype, table.cols(), d_ids, static_cast<int64_t>(ids.size()), out, stream_);
  }

  void add_rows(const Weight& table, const std::vector<int32_t>& positions, float* x) override {
    for (const int32_t p : positions) {
      if (p < 0 || p >= table.rows()) throw_error("position ", p, " is past the position table (", table.rows(), ")");
    }
    const int32_t* d_pos = extra_positions_.upload(positions, stream_, "positions");
    cuda::add_rows(table.data, table.dtype, table.cols(), d_pos, static_cast<int64_t>(positions.size()), x, stream_);
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
    if (rows <= cuda::kGemvMaxRows) {
      auto timed = profile_.scope("gemv", stream_);
      cuda::gemv(x, rows, w.data, w.dtype, k, n, b, out, accumulate, stream_);
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
      gemm_->run(x16, w.data, w.dtype, rows, n, k, out, accumulate);
    }
    if (b) cuda::add_bias(out, b, rows, n, stream_);
  }

  void norm_linear(NormKind kind, const float* x, const Weight& norm_weight, const Weight* norm_bias, double eps,
                   int64_t rows, const Weight& w, const Weight* bias, float* normed, float* out) override {
    if (kind != NormKind::rms || !cuda::rms_norm_gemv_supported(rows, w.cols())) {
      Backend::norm_linear(kind, x, norm_weight, norm_bias, eps, rows, w, bias, normed, out);
      return;
    }
    auto timed = profile_.scope("norm+gemv", stream_);
    cuda::rms_norm_gemv(x, rows, f32(norm_weight), static_cast<float>(eps), w.data, w.dtype, w.cols(), w.rows(),
                        bias ? f32(*bias) : nullptr, out, stream_);
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
      for (const int32_t pos : positions) {
        if (pos >= table.positions) throw_error("position ", pos, " is past the rotary table (", table.positions, ")");
      }
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
      cuda::attention(qkv, shape, step, nullptr, keys, values, kv_dtype_, out, stream_);
      return;
    }
    if (tile_count_ > 0) {
      auto timed = profile_.scope("prefill_attention", stream_);
      cuda::prefill_attention(qkv, shape, step, tiles_, static_cast<int>(tile_count_), keys, values, kv_dtype_, out,
                              stream_);
    }
    if (decode_count_ > 0) {
      auto timed = profile_.scope("attention", stream_);
      cuda::AttentionShape decode = shape;
      decode.rows = static_cast<int>(decode_count_);
      cuda::attention(qkv, decode, step, decode_rows_, keys, values, kv_dtype_, out, stream_);
    }
  }

  void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) override {
    auto timed = profile_.scope("activation", stream_);
    cuda::gated_activation(act, gate_up, rows, inner, out, stream_);
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

  void gather_rows(const float* x, const std::vector<int64_t>& rows, int64_t cols, float* out) override {
    const int64_t* d_rows = gather_rows_.upload(rows, stream_, "gathered rows");
    cuda::gather_rows(x, d_rows, static_cast<int64_t>(rows.size()), cols, out, stream_);
  }

  void logits_summary(const float* logits, int64_t rows, int64_t vocab, int32_t* argmax, float* max_logit,
                      float* log_sum_exp) override {
    // One device array of 3 x rows words: argmax, max, log-sum-exp.
    auto* d = static_cast<char*>(summary_.get(static_cast<std::size_t>(rows) * 12, "logit summaries"));
    const std::size_t n = static_cast<std::size_t>(rows) * 4;
    {
      auto timed = profile_.scope("logits_summary", stream_);
      cuda::logits_summary(logits, rows, vocab, reinterpret_cast<int32_t*>(d), reinterpret_cast<float*>(d + n),
                           reinterpret_cast<float*>(d + 2 * n), stream_);
    }
    check(cudaMemcpyAsync(argmax, d, n, cudaMemcpyDeviceToHost, stream_), "copy to host");
    check(cudaMemcpyAsync(max_logit, d + n, n, cudaMemcpyDeviceToHost, stream_), "copy to host");
    check(cudaMemcpyAsync(log_sum_exp, d + 2 * n, n, cudaMemcpyDeviceToHost, stream_), "copy to host");
    check(cudaStreamSynchronize(stream_), "the step's kernels");
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

  void check_step_rows(std::size_t rows) const {
    if (static_cast<int64_t>(rows) != rows_) throw_error("internal: the step has ", rows_, " rows, an op got ", rows);
  }

  const DeviceRope& rope_table(const RopeTable& table) {
    if (rope_.table != &table) {
      const std::size_t bytes = table.cos.size() * sizeof(float);
      rope_.cos = device_alloc(bytes, "the rotary table");
      rope_.sin = device_alloc(bytes, "the rotary table");
      check(cudaMemcpyAsync(rope_.cos.get(), table.cos.data(), bytes, cudaMemcpyHostToDevice, stream_), "rope upload");
      check(cudaMemcpyAsync(rope_.sin.get(), table.sin.data(), bytes, cudaMemcpyHostToDevice, stream_), "rope upload");
      rope_.table = &table;
    }
    return rope_;
  }

  DType kv_dtype_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<cuda::CudaGemm> gemm_;  // 16-bit products above the gemv's rows
  cuda::OpProfile profile_;
  UploadStaging staging_;
  std::vector<RankKv> kv_;
  DeviceRope rope_;
  int64_t rows_ = 0, decode_count_ = 0, tile_count_ = 0;
  cuda::StepRows step_;
  const int32_t* decode_rows_ = nullptr;  // null: every row decodes
  const cuda::QueryTile* tiles_ = nullptr;
  Scratch positions_, offsets_, tables_, ids_, extra_positions_, moe_rows_, moe_weights_, gather_rows_, operand_,
      summary_, decode_rows_buffer_, tiles_buffer_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(DType kv_dtype, GemmPlan gemm_plan) {
  return std::make_unique<CudaBackend>(kv_dtype, std::move(gemm_plan));
}

}  // namespace kiln::runtime
