// The CPU backend: weights are used in place from the engine's mapped blobs;
// activations and the paged KV cache live in host memory.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/backend.h"
#include "runtime/cpu/cpu_kernels.h"
#include "runtime/expert_routing.h"
#include "runtime/sampler.h"

namespace kiln::runtime {
namespace {

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(int64_t n) : values_(static_cast<std::size_t>(n)) {}
  float* data() override { return values_.data(); }
  int64_t size() const override { return static_cast<int64_t>(values_.size()); }

 private:
  std::vector<float> values_;
};

const float* f32(const Weight& w) {
  if (w.dtype != DType::f32) throw_error("internal: expected an fp32 weight, got ", dtype_name(w.dtype));
  return static_cast<const float*>(w.data);
}

float activate(Activation act, float x) {
  switch (act) {
    case Activation::silu: return cpu::silu(x);
    case Activation::gelu: return cpu::gelu(x);
    case Activation::gelu_tanh: return cpu::gelu_tanh(x);
  }
  return x;
}

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }

  Weight upload(const TensorView& host) override {
    return Weight{host.dtype, host.shape, host.data, host.keep_alive, nullptr, nullptr};
  }

  std::unique_ptr<Buffer> allocate(int64_t floats) override { return std::make_unique<HostBuffer>(floats); }

  void allocate_kv(const KvCacheConfig& c, int rank) override {
    if (static_cast<int>(kv_.size()) <= rank) kv_.resize(static_cast<std::size_t>(rank) + 1);
    const auto per_layer = static_cast<std::size_t>(c.num_blocks * c.block_size * c.kv_heads * c.head_dim);
    kv_[rank].keys.assign(static_cast<std::size_t>(c.num_layers), std::vector<float>(per_layer));
    kv_[rank].values.assign(static_cast<std::size_t>(c.num_layers), std::vector<float>(per_layer));
  }

  void prepare_step(const StepInput& step) override { step_ = &step; }

  void embed(const Weight& table, float* out) override {
    const std::vector<int32_t>& ids = step_->tokens;
    const int64_t cols = table.cols();
    for (std::size_t r = 0; r < ids.size(); ++r) {
      if (ids[r] < 0 || ids[r] >= table.rows())
        throw_error("token id ", ids[r], " is outside the vocabulary (", table.rows(), ")");
      const char* src =
          static_cast<const char*>(table.data) + static_cast<std::size_t>(ids[r] * cols) * dtype_size(table.dtype);
      convert_to_f32(table.dtype, src, out + static_cast<int64_t>(r) * cols, static_cast<std::size_t>(cols));
    }
  }

  void add_positions(const Weight& table, float* x) override {
    const std::vector<int32_t>& positions = step_->positions;
    const int64_t cols = table.cols();
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::size_t r = 0; r < positions.size(); ++r) {
      if (positions[r] < 0 || positions[r] >= table.rows())
        throw_error("position ", positions[r], " is past the position table (", table.rows(), ")");
      const char* src = static_cast<const char*>(table.data) +
                        static_cast<std::size_t>(positions[r] * cols) * dtype_size(table.dtype);
      convert_to_f32(table.dtype, src, row.data(), row.size());
      for (int64_t c = 0; c < cols; ++c) x[static_cast<int64_t>(r) * cols + c] += row[c];
    }
  }

  void norm(NormKind kind, const float* x, const Weight& weight, const Weight* bias, double eps, int64_t rows,
            float* out) override {
    const int64_t cols = weight.rows();
    if (kind == NormKind::rms) {
      cpu::rms_norm(x, f32(weight), eps, rows, cols, out);
    } else {
      cpu::layer_norm(x, f32(weight), bias ? f32(*bias) : nullptr, eps, rows, cols, out);
    }
  }

  void linear(const float* x, int64_t rows, const Weight& w, const Weight* bias, float* out, bool accumulate) override {
    if (!accumulate) {
      cpu::linear(x, rows, w.cols(), w.data, w.dtype, w.rows(), bias ? f32(*bias) : nullptr, out);
      return;
    }
    std::vector<float>& product = accumulate_scratch_;
    product.resize(static_cast<std::size_t>(rows * w.rows()));
    cpu::linear(x, rows, w.cols(), w.data, w.dtype, w.rows(), bias ? f32(*bias) : nullptr, product.data());
    for (std::size_t i = 0; i < product.size(); ++i) out[i] += product[i];
  }

  static void rope(float* qkv, const std::vector<int32_t>& positions, const RopeSpec& spec, const RopeTable& table,
                   const AttentionParams& p) {
    const int64_t width = (p.num_heads + 2 * p.num_kv_heads) * p.head_dim;
    const int64_t heads = p.num_heads + p.num_kv_heads;  // q then k heads are contiguous
    const int64_t half = table.half;
    for (std::size_t r = 0; r < positions.size(); ++r) {
      if (positions[r] >= table.positions)
        throw_error("position ", positions[r], " is past the rotary table (", table.positions, ")");
      const float* cs = table.cos.data() + positions[r] * half;
      const float* sn = table.sin.data() + positions[r] * half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = qkv + static_cast<int64_t>(r) * width + h * p.head_dim;
        for (int64_t i = 0; i < half; ++i) {
          // neox pairs (i, i + half); interleaved pairs (2i, 2i + 1)
          const int64_t a = spec.style == RopeStyle::neox ? i : 2 * i;
          const int64_t b = spec.style == RopeStyle::neox ? i + half : 2 * i + 1;
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * cs[i] - x1 * sn[i];
          v[b] = x1 * cs[i] + x0 * sn[i];
        }
      }
    }
  }

  void attention(int rank, int64_t layer, float* qkv, const std::vector<int32_t>& positions,
                 const std::vector<StepSequence>& seqs, const KvCacheConfig& kv, const AttentionParams& p,
                 float* out) override {
    if (p.rope) rope(qkv, positions, *p.rope, *p.rope_table, p);
    auto& keys = kv_.at(static_cast<std::size_t>(rank)).keys.at(static_cast<std::size_t>(layer));
    auto& values = kv_.at(static_cast<std::size_t>(rank)).values.at(static_cast<std::size_t>(layer));
    const int64_t d = p.head_dim, q_width = p.num_heads * d, kv_width = p.num_kv_heads * d;
    const int64_t width = q_width + 2 * kv_width;
    auto slot = [&](const SequenceKv& s, int64_t pos) {
      return (static_cast<int64_t>(s.blocks.at(static_cast<std::size_t>(pos / kv.block_size))) * kv.block_size +
              pos % kv.block_size) *
             kv_width;
    };
    // Store the new K and V first: a token attends to itself.
    for (const auto& s : seqs) {
      for (int64_t t = 0; t < s.count; ++t) {
        const float* row = qkv + (s.row + t) * width;
        const int64_t at = slot(*s.kv, s.start + t);
        std::memcpy(keys.data() + at, row + q_width, kv_width * sizeof(float));
        std::memcpy(values.data() + at, row + q_width + kv_width, kv_width * sizeof(float));
      }
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    const int64_t group = p.num_heads / p.num_kv_heads;
    // One task per (sequence token, head).
    std::vector<std::pair<const StepSequence*, int64_t>> tokens;
    for (const auto& s : seqs) {
      for (int64_t t = 0; t < s.count; ++t) tokens.emplace_back(&s, t);
    }
    ThreadPool::current().parallel_for(
        static_cast<int64_t>(tokens.size()) * p.num_heads, 4, [&](int64_t begin, int64_t end) {
          std::vector<float> scores;
          for (int64_t task = begin; task < end; ++task) {
            const auto& [s, t] = tokens[static_cast<std::size_t>(task / p.num_heads)];
            const int64_t h = task % p.num_heads, kvh = h / group;
            const int64_t pos = s->start + t;
            const int64_t first = p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
            const float* q = qkv + (s->row + t) * width + h * d;
            scores.assign(static_cast<std::size_t>(pos + 1), -std::numeric_limits<float>::infinity());
            const float slope = p.alibi_slopes ? (*p.alibi_slopes)[static_cast<std::size_t>(h)] : 0.f;
            for (int64_t k = first; k <= pos; ++k) {
              const float* key = keys.data() + slot(*s->kv, k) + kvh * d;
              float dot = 0;
              for (int64_t i = 0; i < d; ++i) dot += q[i] * key[i];
              scores[k] = dot * scale + slope * static_cast<float>(k);
            }
            cpu::softmax_inplace(scores.data(), pos + 1);
            float* o = out + (s->row + t) * q_width + h * d;
            std::fill(o, o + d, 0.f);
            for (int64_t k = first; k <= pos; ++k) {
              const float* val = values.data() + slot(*s->kv, k) + kvh * d;
              const float w = scores[k];
              for (int64_t i = 0; i < d; ++i) o[i] += w * val[i];
            }
          }
        });
  }

  void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) override {
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = gate_up + r * 2 * inner;
      for (int64_t i = 0; i < inner; ++i) out[r * inner + i] = activate(act, g[i]) * g[inner + i];
    }
  }

  void activation(Activation act, float* x, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] = activate(act, x[i]);
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void fill(float* x, float value, int64_t n) override { std::fill(x, x + n, value); }

  void scale_add_rows(const float* src, const std::vector<int64_t>& rows, const std::vector<float>& weights,
                      int64_t cols, float* out) override {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      float* dst = out + rows[i] * cols;
      const float* s = src + static_cast<int64_t>(i) * cols;
      for (int64_t c = 0; c < cols; ++c) dst[c] += weights[i] * s[c];
    }
  }

  void add_bias(float* x, const Weight& bias, int64_t rows) override {
    const float* b = f32(bias);
    const int64_t cols = bias.rows();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) x[r * cols + c] += b[c];
    }
  }

  void route_experts(const float* router_logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize,
                     float* weights, float* used) override {
    std::fill(used, used + experts, 0.f);
    std::fill(weights, weights + rows * experts, 0.f);
    for (int64_t r = 0; r < rows; ++r) {
      for (const ExpertChoice& c : choose_experts(router_logits + r * experts, experts, top_k, normalize)) {
        weights[r * experts + c.expert] = c.weight;
        used[c.expert] = 1.f;
      }
    }
  }

  void linear_if(const float* flag, const float* x, int64_t rows, const Weight& w, const Weight* bias, float* out,
                 bool accumulate) override {
    if (*flag != 0.f) linear(x, rows, w, bias, out, accumulate);
  }

  void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows,
                    int64_t cols, float* x) override {
    if (*flag == 0.f) return;
    for (int64_t r = 0; r < rows; ++r) {
      const float w = weights[r * stride];
      if (w == 0.f) continue;
      for (int64_t c = 0; c < cols; ++c) x[r * cols + c] += w * src[r * cols + c];
    }
  }

  void gather_rows(const float* x, const std::vector<int64_t>& rows, int64_t cols, float* out) override {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(out + static_cast<int64_t>(i) * cols, x + rows[i] * cols, cols * sizeof(float));
    }
  }

  void copy_to_host(const float* device, int64_t n, float* host) override {
    std::memcpy(host, device, static_cast<std::size_t>(n) * sizeof(float));
  }

  void gather_logit_rows(const float* x, int64_t cols, float* out) override {
    gather_rows(x, step_->logit_rows, cols, out);
  }

  void logits_summary(const float* logits, int64_t rows, int64_t vocab) override {
    summary_argmax_.resize(static_cast<std::size_t>(rows));
    summary_max_.resize(static_cast<std::size_t>(rows));
    summary_lse_.resize(static_cast<std::size_t>(rows));
    ThreadPool::current().parallel_for(rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* row = logits + r * vocab;
        summary_argmax_[r] = runtime::argmax(row, vocab);
        summary_max_[r] = row[summary_argmax_[r]];
        summary_lse_[r] = runtime::log_sum_exp(row, vocab);
      }
    });
  }

  void read_logits_summary(int32_t* argmax, float* max_logit, float* log_sum_exp) override {
    std::copy(summary_argmax_.begin(), summary_argmax_.end(), argmax);
    std::copy(summary_max_.begin(), summary_max_.end(), max_logit);
    std::copy(summary_lse_.begin(), summary_lse_.end(), log_sum_exp);
  }

 private:
  struct RankKv {
    std::vector<std::vector<float>> keys, values;  // [layer][block][slot][kv_head][head_dim]
  };
  std::vector<RankKv> kv_;
  std::vector<float> accumulate_scratch_;
  const StepInput* step_ = nullptr;
  std::vector<int32_t> summary_argmax_;
  std::vector<float> summary_max_, summary_lse_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace kiln::runtime
