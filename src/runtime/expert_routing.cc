#include "runtime/expert_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::runtime {

std::vector<ExpertChoice> choose_experts(const float* logits, int64_t experts, int64_t top_k, bool normalize) {
  const double top = *std::max_element(logits, logits + experts);
  std::vector<double> probs(static_cast<std::size_t>(experts));
  double sum = 0;
  for (int64_t e = 0; e < experts; ++e) sum += probs[e] = std::exp(logits[e] - top);
  std::vector<int64_t> order(static_cast<std::size_t>(experts));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                    [&](int64_t a, int64_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
  double chosen = 0;
  for (int64_t k = 0; k < top_k; ++k) chosen += probs[order[k]];
  std::vector<ExpertChoice> out;
  for (int64_t k = 0; k < top_k; ++k) {
    const int64_t e = order[k];
    out.push_back({e, static_cast<float>(probs[e] / (normalize ? chosen : sum))});
  }
  return out;
}

}  // namespace kiln::runtime
