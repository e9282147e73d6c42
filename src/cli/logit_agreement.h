// How far an engine's next-token distributions are from a reference's, the way
// low-precision and quantized models are judged (llama.cpp's perplexity tool
// reports the same figures): per position, the KL divergence of the engine's
// softmax from the reference's and whether their top-1 tokens agree, the
// latter only where the reference's top-2 margin is wider than the error the
// engine's precision is expected to make; and max |logit error|.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::cli {

class LogitAgreement {
 public:
  // `decisive_margin`: a position counts towards top-1 agreement when the
  // reference's top-1 logit leads its second by more than this.
  explicit LogitAgreement(double decisive_margin) : decisive_margin_(decisive_margin) {}

  // One position: `vocab` logits of the engine and of the reference.
  void add(const float* engine, const float* reference, int64_t vocab);

  int64_t positions() const { return static_cast<int64_t>(kl_.size()); }
  double kl_mean() const;
  double kl_p99() const;  // nearest rank
  double kl_max() const;
  int64_t decisive() const { return decisive_; }
  int64_t top1_agree() const { return agree_; }
  double top1_share() const { return decisive_ ? static_cast<double>(agree_) / static_cast<double>(decisive_) : 1; }
  double max_abs_error() const { return max_abs_; }

 private:
  double decisive_margin_;
  std::vector<double> kl_;
  int64_t decisive_ = 0, agree_ = 0;
  double max_abs_ = 0;
};

// KL(p || q) of the softmax distributions of logits p and q, in float64.
double kl_divergence(const float* p, const float* q, int64_t vocab);

}  // namespace kiln::cli
