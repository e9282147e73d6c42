// Every Backend operation the decoder graph uses, on each backend this build
// can run, against a float64 computation of its documented meaning (as
// llama.cpp's test-backend-ops and CTranslate2's ops tests do): linear in
// fp32, bf16 and fp16 with bias and accumulation, both norms, the gated and
// plain activations, the whole gated MLP (with and without its norm), the element-wise ops, row gathers, the logits
// summary, embedding lookup, and paged attention over a prefill step and a decode step of two sequences with grouped KV
// heads. Inputs are random with a fixed seed; 16-bit weights are compared against their rounded values, so every bound
// is fp32 arithmetic's, relative to the sum of the magnitudes involved.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "runtime/backend.h"
#include "runtime/kv_cache.h"

namespace kiln::runtime {
namespace {

// The backends present: the CPU always (a GPU backend joins here in builds
// that have one and a device to run it).
std::vector<std::pair<std::string, std::function<std::unique_ptr<Backend>()>>> backends() {
  return {{"cpu", [] { return make_cpu_backend(); }}};
}

class BackendConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (auto& [name, make] : backends()) {
      if (name == GetParam()) backend_ = make();
    }
    ASSERT_TRUE(backend_);
  }

  std::vector<float> random(std::size_t n, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng_);
    return v;
  }
  // A backend buffer holding `host`.
  float* device(const std::vector<float>& host) {
    buffers_.push_back(backend_->allocate(static_cast<int64_t>(host.size())));
    float* d = buffers_.back()->data();
    if (!host.empty()) std::copy(host.begin(), host.end(), d);  // the CPU backend's buffers are host memory
    return d;
  }
  std::vector<float> host(const float* d, std::size_t n) {
    std::vector<float> h(n);
    backend_->copy_to_host(d, static_cast<int64_t>(n), h.data());
    return h;
  }
  // A weight of `values` stored in `dtype`; `rounded` receives what it holds.
  Weight weight(const std::vector<float>& values, Shape shape, DType dtype, std::vector<double>* rounded = nullptr) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(values.size() * dtype_size(dtype));
    convert_from_f32(values.data(), dtype, bytes->data(), values.size());
    if (rounded) {
      std::vector<float> back(values.size());
      convert_to_f32(dtype, bytes->data(), back.data(), back.size());
      rounded->assign(back.begin(), back.end());
    }
    TensorView view{dtype, std::move(shape), bytes->data(), bytes};
    return backend_->upload(view);
  }

  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::mt19937 rng_{20261203};
};

// |got - want| <= 1e-5 x scale (scale: the magnitudes summed into want, or 1).
void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& scale,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double bound = 1e-5 * std::max(scale.empty() ? 1.0 : scale[i], 1.0);
    ASSERT_LE(std::fabs(got[i] - want[i]), bound) << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

TEST_P(BackendConformance, LinearInEveryStoredDtypeWithBiasAndAccumulation) {
  const int64_t rows = 5, k = 24, n = 12;  // rows above a GPU's gemv rows belong to its GEMM; here both ways
  for (const DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (const int64_t m : {int64_t{1}, rows, int64_t{17}}) {
      const std::vector<float> x = random(static_cast<std::size_t>(m * k)), w = random(static_cast<std::size_t>(n * k));
      const std::vector<float> b = random(static_cast<std::size_t>(n)), base = random(static_cast<std::size_t>(m * n));
      std::vector<double> wr;
      const Weight wt = weight(w, {n, k}, dtype, &wr);
      const Weight bt = weight(b, {n}, DType::f32);
      for (const bool accumulate : {false, true}) {
        float* out = device(base);
        backend_->linear(device(x), m, wt, &bt, out, accumulate);
        std::vector<double> want(static_cast<std::size_t>(m * n)), scale(want.size());
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            double acc = b[static_cast<std::size_t>(j)], mag = std::fabs(acc);
            for (int64_t c = 0; c < k; ++c) {
              const double p = double{x[static_cast<std::size_t>(r * k + c)]} * wr[static_cast<std::size_t>(j * k + c)];
              acc += p;
              mag += std::fabs(p);
            }
            const std::size_t i = static_cast<std::size_t>(r * n + j);
            if (accumulate) acc += base[i], mag += std::fabs(base[i]);
            want[i] = acc;
            scale[i] = mag;
          }
        }
        expect_near_all(
            host(out, want.size()), want, scale,
            std::string(dtype_name(dtype)) + " rows " + std::to_string(m) + (accumulate ? " accumulate" : ""));
      }
    }
  }
}

TEST_P(BackendConformance, RmsAndLayerNorm) {
  const int64_t rows = 3, cols = 40;
  const double eps = 1e-5;
  const std::vector<float> x = random(static_cast<std::size_t>(rows * cols), -3.f, 3.f);
  const std::vector<float> g = random(static_cast<std::size_t>(cols)), b = random(static_cast<std::size_t>(cols));
  const Weight gw = weight(g, {cols}, DType::f32), bw = weight(b, {cols}, DType::f32);
  for (const NormKind kind : {NormKind::rms, NormKind::layer}) {
    float* out = device(std::vector<float>(x.size()));
    backend_->norm(kind, device(x), gw, kind == NormKind::layer ? &bw : nullptr, eps, rows, out);
    std::vector<double> want(x.size()), scale(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * cols;
      double mean = 0, sq = 0;
      for (int64_t c = 0; c < cols; ++c) mean += row[c] / double(cols);
      if (kind == NormKind::rms) mean = 0;
      for (int64_t c = 0; c < cols; ++c) sq += (row[c] - mean) * (row[c] - mean) / double(cols);
      const double inv = 1.0 / std::sqrt(sq + eps);
      for (int64_t c = 0; c < cols; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * cols + c);
        want[i] = (row[c] - mean) * inv * g[static_cast<std::size_t>(c)] +
                  (kind == NormKind::layer ? b[static_cast<std::size_t>(c)] : 0.0);
        scale[i] = 10.0;  // a row's statistics are sums of cols terms
      }
    }
    expect_near_all(host(out, want.size()), want, scale, kind == NormKind::rms ? "rms" : "layer");
  }
}

double activate(Activation act, double v) {
  switch (act) {
    case Activation::silu: return v / (1 + std::exp(-v));
    case Activation::gelu: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Activation::gelu_tanh: return 0.5 * v * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  }
  return 0;
}

TEST_P(BackendConformance, GatedAndPlainActivations) {
  const int64_t rows = 4, inner = 10;
  const std::vector<float> gu = random(static_cast<std::size_t>(rows * 2 * inner), -4.f, 4.f);
  for (const Activation act : {Activation::silu, Activation::gelu, Activation::gelu_tanh}) {
    float* out = device(std::vector<float>(static_cast<std::size_t>(rows * inner)));
    backend_->gated_activation(act, device(gu), rows, inner, out);
    std::vector<double> want(static_cast<std::size_t>(rows * inner)), scale(want.size(), 5.0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < inner; ++c) {
        want[static_cast<std::size_t>(r * inner + c)] = activate(act, gu[static_cast<std::size_t>(r * 2 * inner + c)]) *
                                                        gu[static_cast<std::size_t>(r * 2 * inner + inner + c)];
      }
    }
    expect_near_all(host(out, want.size()), want, scale, "gated");
    float* plain = device(gu);
    backend_->activation(act, plain, static_cast<int64_t>(gu.size()));
    std::vector<double> want_plain(gu.size());
    for (std::size_t i = 0; i < gu.size(); ++i) want_plain[i] = activate(act, gu[i]);
    expect_near_all(host(plain, gu.size()), want_plain, std::vector<double>(gu.size(), 5.0), "plain");
  }
}

// The whole gated MLP as one op (Backend::gated_mlp, which a backend may fuse):
// out (+)= down(act(gate) * up) of [gate | up] = gate_up(x), x RMS-normalized
// first when a norm is given.
TEST_P(BackendConformance, GatedMlpWithAndWithoutItsNorm) {
  const int64_t rows = 3, hidden = 16, inner = 12;
  const double eps = 1e-5;
  const std::vector<float> x = random(static_cast<std::size_t>(rows * hidden), -2.f, 2.f);
  const std::vector<float> g = random(static_cast<std::size_t>(hidden), 0.5f, 1.5f);
  const std::vector<float> gu = random(static_cast<std::size_t>(2 * inner * hidden));
  const std::vector<float> dn = random(static_cast<std::size_t>(hidden * inner));
  const std::vector<float> base = random(static_cast<std::size_t>(rows * hidden));
  std::vector<double> gur, dnr;
  const Weight gw = weight(g, {hidden}, DType::f32);
  const Weight guw = weight(gu, {2 * inner, hidden}, DType::bf16, &gur);
  const Weight dnw = weight(dn, {hidden, inner}, DType::bf16, &dnr);
  for (const bool normed : {false, true}) {
    for (const bool accumulate : {false, true}) {
      const NormArgs norm{NormKind::rms, &gw, nullptr, eps};
      float* out = device(base);
      float* scratch_normed = device(std::vector<float>(x.size()));
      float* scratch_gu = device(std::vector<float>(static_cast<std::size_t>(rows * 2 * inner)));
      float* scratch_act = device(std::vector<float>(static_cast<std::size_t>(rows * inner)));
      backend_->gated_mlp(Activation::silu, device(x), rows, normed ? &norm : nullptr, guw, dnw, scratch_normed,
                          scratch_gu, scratch_act, out, accumulate);
      std::vector<double> want(base.size()), scale(base.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> in(static_cast<std::size_t>(hidden));
        double sq = 0;
        for (int64_t c = 0; c < hidden; ++c)
          sq += double{x[static_cast<std::size_t>(r * hidden + c)]} * x[static_cast<std::size_t>(r * hidden + c)];
        const double inv = normed ? 1.0 / std::sqrt(sq / double(hidden) + eps) : 1.0;
        for (int64_t c = 0; c < hidden; ++c) {
          in[static_cast<std::size_t>(c)] =
              x[static_cast<std::size_t>(r * hidden + c)] * inv * (normed ? g[static_cast<std::size_t>(c)] : 1.0);
        }
        std::vector<double> act(static_cast<std::size_t>(inner));
        double act_mag = 0;
        for (int64_t j = 0; j < inner; ++j) {
          double gate = 0, up = 0;
          for (int64_t c = 0; c < hidden; ++c) {
            gate += in[static_cast<std::size_t>(c)] * gur[static_cast<std::size_t>(j * hidden + c)];
            up += in[static_cast<std::size_t>(c)] * gur[static_cast<std::size_t>((inner + j) * hidden + c)];
          }
          act[static_cast<std::size_t>(j)] = activate(Activation::silu, gate) * up;
          act_mag += std::fabs(act[static_cast<std::size_t>(j)]);
        }
        for (int64_t c = 0; c < hidden; ++c) {
          const std::size_t i = static_cast<std::size_t>(r * hidden + c);
          double acc = accumulate ? base[i] : 0.0;
          for (int64_t j = 0; j < inner; ++j)
            acc += act[static_cast<std::size_t>(j)] * dnr[static_cast<std::size_t>(c * inner + j)];
          want[i] = acc;
          scale[i] = 10.0 * (act_mag + 1.0);  // two products of sums deep
        }
      }
      expect_near_all(host(out, want.size()), want, scale,
                      std::string(normed ? "normed" : "plain") + (accumulate ? " accumulate" : ""));
    }
  }
}

TEST_P(BackendConformance, ElementwiseOpsAndGathers) {
  const int64_t rows = 6, cols = 7;
  const std::vector<float> x = random(static_cast<std::size_t>(rows * cols)), y = random(x.size());
  const std::vector<float> b = random(static_cast<std::size_t>(cols));
  float* dx = device(x);
  backend_->add(dx, device(y), static_cast<int64_t>(x.size()));
  backend_->add_bias(dx, weight(b, {cols}, DType::f32), rows);
  std::vector<double> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) want[i] = double{x[i]} + y[i] + b[i % static_cast<std::size_t>(cols)];
  expect_near_all(host(dx, x.size()), want, {}, "add, add_bias");

  float* filled = device(std::vector<float>(9));
  backend_->fill(filled, 2.5f, 9);
  expect_near_all(host(filled, 9), std::vector<double>(9, 2.5), {}, "fill");

  const std::vector<int64_t> picked = {4, 0, 4, 2};
  float* gathered = device(std::vector<float>(picked.size() * static_cast<std::size_t>(cols)));
  backend_->gather_rows(device(x), picked, cols, gathered);
  std::vector<double> want_g;
  for (const int64_t r : picked) want_g.insert(want_g.end(), x.begin() + r * cols, x.begin() + (r + 1) * cols);
  expect_near_all(host(gathered, want_g.size()), want_g, {}, "gather_rows");

  // out[rows[i]] += weights[i] * src[i]; a row named twice takes both.
  const std::vector<float> src = random(picked.size() * static_cast<std::size_t>(cols));
  const std::vector<float> wts = {0.5f, -1.f, 2.f, 0.25f};
  float* out = device(x);
  backend_->scale_add_rows(device(src), picked, wts, cols, out);
  std::vector<double> want_s(x.begin(), x.end());
  for (std::size_t i = 0; i < picked.size(); ++i) {
    for (int64_t c = 0; c < cols; ++c) {
      want_s[static_cast<std::size_t>(picked[i] * cols + c)] +=
          double{wts[i]} * src[i * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c)];
    }
  }
  expect_near_all(host(out, want_s.size()), want_s, std::vector<double>(want_s.size(), 4.0), "scale_add_rows");
}

TEST_P(BackendConformance, LogitsSummaryAndEmbedding) {
  const int64_t rows = 3, vocab = 101;
  std::vector<float> logits = random(static_cast<std::size_t>(rows * vocab), -8.f, 8.f);
  logits[static_cast<std::size_t>(vocab + 17)] = logits[static_cast<std::size_t>(vocab + 60)] =
      20.f;  // a tie: the first wins
  float* d = device(logits);
  backend_->logits_summary(d, rows, vocab);
  std::vector<int32_t> argmax(static_cast<std::size_t>(rows));
  std::vector<float> max_logit(argmax.size()), lse(argmax.size());
  backend_->read_logits_summary(argmax.data(), max_logit.data(), lse.data());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    int32_t best = 0;
    for (int32_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double{row[v]} - row[best]);
    EXPECT_EQ(argmax[static_cast<std::size_t>(r)], best) << r;
    EXPECT_EQ(max_logit[static_cast<std::size_t>(r)], row[best]) << r;
    EXPECT_NEAR(lse[static_cast<std::size_t>(r)], row[best] + std::log(sum), 1e-5 * 20) << r;
  }
  EXPECT_EQ(argmax[1], 17);

  const int64_t table_rows = 9, hidden = 6;
  const std::vector<float> table = random(static_cast<std::size_t>(table_rows * hidden));
  StepInput step;
  step.tokens = {3, 8, 0, 3};
  step.positions = {0, 1, 2, 3};
  SequenceKv kv;
  step.seqs = {StepSequence{&kv, 0, 0, 4}};
  step.logit_rows = {3};
  backend_->prepare_step(step);
  float* out = device(std::vector<float>(static_cast<std::size_t>(4 * hidden)));
  backend_->embed(weight(table, {table_rows, hidden}, DType::f32), out);
  std::vector<double> want;
  for (const int32_t t : step.tokens)
    want.insert(want.end(), table.begin() + t * hidden, table.begin() + (t + 1) * hidden);
  expect_near_all(host(out, want.size()), want, {}, "embed");
}

// Paged attention: a prefill step of two sequences (6 and 3 tokens), then a
// decode step of one token each, 4 query heads over 2 KV heads, blocks of 4
// tokens; each row against softmax(q k / sqrt(d)) v over its sequence's
// positions up to its own, in float64.
TEST_P(BackendConformance, PagedAttentionPrefillThenDecodeWithGroupedHeads) {
  KvCacheConfig config;
  config.num_layers = 1;
  config.kv_heads = 2;
  config.head_dim = 8;
  config.block_size = 4;
  config.num_blocks = 8;
  KvCache cache(config);
  backend_->allocate_kv(config, 0);
  AttentionParams p;
  p.num_heads = 4;
  p.num_kv_heads = 2;
  p.head_dim = 8;
  p.max_context = 16;
  const int64_t d = p.head_dim, width = (p.num_heads + 2 * p.num_kv_heads) * d;
  SequenceKv a, b;
  // Every K and V row each sequence has stored, by position, for the reference.
  std::vector<std::vector<float>> k_of[2], v_of[2];

  auto run_step = [&](const std::vector<int64_t>& counts) {
    SequenceKv* kvs[2] = {&a, &b};
    StepInput step;
    for (int s = 0; s < 2; ++s) {
      ASSERT_TRUE(cache.reserve(*kvs[s], kvs[s]->length + counts[static_cast<std::size_t>(s)]));
      step.seqs.push_back(StepSequence{kvs[s], static_cast<int64_t>(step.tokens.size()), kvs[s]->length,
                                       counts[static_cast<std::size_t>(s)]});
      for (int64_t t = 0; t < counts[static_cast<std::size_t>(s)]; ++t) {
        step.tokens.push_back(1);
        step.positions.push_back(static_cast<int32_t>(kvs[s]->length + t));
      }
    }
    step.logit_rows = {static_cast<int64_t>(step.tokens.size()) - 1};
    const auto rows = static_cast<int64_t>(step.tokens.size());
    const std::vector<float> qkv = random(static_cast<std::size_t>(rows * width));
    backend_->prepare_step(step);
    float* out = device(std::vector<float>(static_cast<std::size_t>(rows * p.num_heads * d)));
    backend_->attention(0, 0, device(qkv), step.positions, step.seqs, config, p, out);
    const std::vector<float> got = host(out, static_cast<std::size_t>(rows * p.num_heads * d));
    for (int s = 0; s < 2; ++s) {
      const StepSequence& seq = step.seqs[static_cast<std::size_t>(s)];
      for (int64_t t = 0; t < seq.count; ++t) {
        const float* row = qkv.data() + (seq.row + t) * width;
        k_of[s].emplace_back(row + p.num_heads * d, row + (p.num_heads + p.num_kv_heads) * d);
        v_of[s].emplace_back(row + (p.num_heads + p.num_kv_heads) * d, row + width);
      }
      for (int64_t t = 0; t < seq.count; ++t) {
        const int64_t pos = seq.start + t;
        const float* q = qkv.data() + (seq.row + t) * width;
        for (int64_t h = 0; h < p.num_heads; ++h) {
          const int64_t g = h / (p.num_heads / p.num_kv_heads);
          std::vector<double> score(static_cast<std::size_t>(pos + 1));
          double top = -1e300;
          for (int64_t j = 0; j <= pos; ++j) {
            double dot = 0;
            for (int64_t c = 0; c < d; ++c)
              dot += double{q[h * d + c]} * k_of[s][static_cast<std::size_t>(j)][g * d + c];
            score[static_cast<std::size_t>(j)] = dot / std::sqrt(double(d));
            top = std::max(top, score[static_cast<std::size_t>(j)]);
          }
          double total = 0;
          for (double& x : score) total += (x = std::exp(x - top));
          for (int64_t c = 0; c < d; ++c) {
            double want = 0;
            for (int64_t j = 0; j <= pos; ++j) {
              want += score[static_cast<std::size_t>(j)] / total * v_of[s][static_cast<std::size_t>(j)][g * d + c];
            }
            const float have = got[static_cast<std::size_t>((seq.row + t) * p.num_heads * d + h * d + c)];
            ASSERT_NEAR(have, want, 1e-5) << "sequence " << s << " position " << pos << " head " << h << " dim " << c;
          }
        }
      }
      kvs[s]->length += seq.count;
    }
  };
  run_step({6, 3});  // prefill: the second sequence's rows follow the first's
  run_step({1, 1});  // decode: both read what the prefill stored, across block boundaries
  run_step({1, 2});  // a decode row beside a two-token chunk
}

INSTANTIATE_TEST_SUITE_P(Present, BackendConformance, ::testing::Values("cpu"),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace kiln::runtime
