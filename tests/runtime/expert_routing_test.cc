// Expert routing against probabilities worked out by hand: softmax over the
// router logits, top k with ties to the lower index, optional renormalization.
#include "runtime/expert_routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace kiln::runtime {
namespace {

// Probabilities 1/9, 3/9, 2/9, 3/9: experts 1 and 3 tie at the top.
const std::vector<float> kLogits = {0.f, std::log(3.f), std::log(2.f), std::log(3.f)};

TEST(ExpertRouting, TopKTiesGoToTheLowerIndexInDescendingOrder) {
  const auto c = choose_experts(kLogits.data(), 4, 3, /*normalize=*/true);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].expert, 1);
  EXPECT_EQ(c[1].expert, 3);
  EXPECT_EQ(c[2].expert, 2);
  // Renormalized over the three kept: 3/8, 3/8, 2/8.
  EXPECT_NEAR(c[0].weight, 0.375f, 1e-6);
  EXPECT_NEAR(c[1].weight, 0.375f, 1e-6);
  EXPECT_NEAR(c[2].weight, 0.25f, 1e-6);
}

TEST(ExpertRouting, WithoutRenormalizationWeightsAreTheSoftmaxProbabilities) {
  const auto c = choose_experts(kLogits.data(), 4, 2, /*normalize=*/false);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].expert, 1);
  EXPECT_EQ(c[1].expert, 3);
  EXPECT_NEAR(c[0].weight, 1.0f / 3, 1e-6);
  EXPECT_NEAR(c[1].weight, 1.0f / 3, 1e-6);
}

TEST(ExpertRouting, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1000.f, 999.f};
  const auto c = choose_experts(logits.data(), 2, 1, /*normalize=*/false);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].expert, 0);
  EXPECT_NEAR(c[0].weight, 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
}

}  // namespace
}  // namespace kiln::runtime
