#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace kiln::runtime {

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

namespace {

// log(sum(exp(logits))) in double, shifted by the max for stability.
double log_sum_exp_f64(const float* logits, int64_t n) {
  const float top = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - top);
  return top + std::log(sum);
}

}  // namespace

float log_sum_exp(const float* logits, int64_t n) { return static_cast<float>(log_sum_exp_f64(logits, n)); }

float log_probability(const float* logits, int64_t n, int32_t token) {
  return static_cast<float>(logits[token] - log_sum_exp_f64(logits, n));
}

void check_sampling(const SamplingParams& params) {
  if (!(params.repetition_penalty > 0)) {
    throw_error("repetition_penalty must be > 0, got ", params.repetition_penalty);
  }
  if (!params.greedy) {
    if (!(params.temperature > 0)) throw_error("temperature must be > 0, got ", params.temperature);
    if (params.top_k < 0) throw_error("top_k must be >= 0, got ", params.top_k);
    if (!(params.top_p > 0 && params.top_p <= 1)) throw_error("top_p must be in (0, 1], got ", params.top_p);
  }
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params,
                     const std::vector<int32_t>* history, double uniform) {
  std::vector<float> penalized;
  if (params.repetition_penalty != 1.0 && history && !history->empty()) {
    penalized.assign(logits, logits + vocab);
    const auto p = static_cast<float>(params.repetition_penalty);
    for (int32_t t : *history) {
      if (t < 0 || t >= vocab) continue;
      // Each distinct token once, as HF's gather/scatter does.
      const float original = logits[t];
      penalized[t] = original > 0 ? original / p : original * p;
    }
    logits = penalized.data();
  }
  if (params.greedy) return argmax(logits, vocab);
  // Candidates by descending logit; top-k keeps the first k.
  std::vector<int32_t> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const int64_t k = params.top_k > 0 ? std::min(params.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  order.resize(static_cast<std::size_t>(k));
  std::vector<double> probs(order.size());
  const double top = logits[order[0]] / params.temperature;
  double sum = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    probs[i] = std::exp(logits[order[i]] / params.temperature - top);
    sum += probs[i];
  }
  // Top-p keeps the smallest prefix whose probability reaches top_p.
  std::size_t keep = order.size();
  if (params.top_p < 1.0) {
    double cumulative = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      cumulative += probs[i] / sum;
      if (cumulative >= params.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  const double total = std::accumulate(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  double u = uniform * total;
  for (std::size_t i = 0; i < keep; ++i) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { check_sampling(params); }

// uniform_real_distribution(0, total) is total * canonical + 0: drawing the
// canonical part here and scaling it in sample_token gives the same number.
double Sampler::draw() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t Sampler::next(const float* logits, int64_t vocab, const std::vector<int32_t>& history) {
  const double uniform = params_.greedy ? 0.0 : draw();
  return sample_token(logits, vocab, params_, &history, uniform);
}

}  // namespace kiln::runtime
