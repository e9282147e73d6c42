#include "cli/logit_agreement.h"

#include <algorithm>
#include <cmath>

namespace kiln::cli {
namespace {

double log_sum_exp(const float* x, int64_t n) {
  const double m = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(sum);
}

}  // namespace

double kl_divergence(const float* p, const float* q, int64_t vocab) {
  const double lp = log_sum_exp(p, vocab), lq = log_sum_exp(q, vocab);
  double kl = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const double log_p = p[i] - lp, log_q = q[i] - lq;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can leave a tiny negative
}

void LogitAgreement::add(const float* engine, const float* reference, int64_t vocab) {
  kl_.push_back(kl_divergence(reference, engine, vocab));
  int64_t top = 0, second = -1;
  for (int64_t i = 1; i < vocab; ++i) {
    if (reference[i] > reference[top]) {
      second = top;
      top = i;
    } else if (second < 0 || reference[i] > reference[second]) {
      second = i;
    }
  }
  const double margin = second < 0 ? INFINITY : static_cast<double>(reference[top]) - reference[second];
  if (margin > decisive_margin_) {
    ++decisive_;
    agree_ += std::max_element(engine, engine + vocab) - engine == top;
  }
  for (int64_t i = 0; i < vocab; ++i) {
    max_abs_ = std::max(max_abs_, std::fabs(static_cast<double>(engine[i]) - reference[i]));
  }
}

double LogitAgreement::kl_mean() const {
  double sum = 0;
  for (double v : kl_) sum += v;
  return kl_.empty() ? 0 : sum / static_cast<double>(kl_.size());
}

double LogitAgreement::kl_p99() const {
  if (kl_.empty()) return 0;
  std::vector<double> sorted = kl_;
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(sorted.size())));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

double LogitAgreement::kl_max() const { return kl_.empty() ? 0 : *std::max_element(kl_.begin(), kl_.end()); }

}  // namespace kiln::cli
