// Mixtral-style expert routing of one token: softmax over the router's
// logits, the top k experts (ties to the lower index), each weighted by its
// probability, renormalized over the k when the model says so. The reference
// the CUDA routing kernel follows.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::runtime {

struct ExpertChoice {
  int64_t expert = 0;
  float weight = 0;
};

// In descending probability order.
std::vector<ExpertChoice> choose_experts(const float* logits, int64_t experts, int64_t top_k, bool normalize);

}  // namespace kiln::runtime
