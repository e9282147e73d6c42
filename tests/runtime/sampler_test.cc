// Sampler: greedy ties, top-k, top-p and temperature against the softmax
// distribution computed here; seeded reproducibility; parameter checks.
#include "runtime/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"

namespace kiln::runtime {
namespace {

using ::testing::HasSubstr;

SamplingParams sampling(double temperature, int64_t top_k, double top_p, uint64_t seed) {
  SamplingParams p;
  p.greedy = false;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.seed = seed;
  return p;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double max = -std::numeric_limits<double>::infinity();
  for (float l : logits) max = std::max(max, l / temperature);
  std::vector<double> p;
  double sum = 0;
  for (float l : logits) {
    p.push_back(std::exp(l / temperature - max));
    sum += p.back();
  }
  for (auto& x : p) x /= sum;
  return p;
}

std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<double> counts(logits.size());
  for (int i = 0; i < draws; ++i) {
    const int32_t t = sampler.next(logits.data(), static_cast<int64_t>(logits.size()));
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    counts[static_cast<std::size_t>(t)] += 1.0 / draws;
  }
  return counts;
}

TEST(Sampler, GreedyTakesTheFirstArgmax) {
  Sampler greedy(SamplingParams{});
  const std::vector<float> ties = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(greedy.next(ties.data(), 4), 1);
  const std::vector<float> last = {-5.0f, -4.0f, -3.0f};
  EXPECT_EQ(greedy.next(last.data(), 3), 2);
  const std::vector<float> all_equal(7, 0.5f);
  EXPECT_EQ(greedy.next(all_equal.data(), 7), 0);
  const std::vector<float> with_inf = {0.0f, -std::numeric_limits<float>::infinity(), 1e30f, 1e30f};
  EXPECT_EQ(greedy.next(with_inf.data(), 4), 2);
  EXPECT_EQ(argmax(ties.data(), 4), 1);
  EXPECT_EQ(argmax(ties.data(), 1), 0);
}

TEST(Sampler, TopK1IsAlwaysTheArgmax) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.99f, -1.0f, 1.5f};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    for (double t : {0.1, 1.0, 5.0}) {
      Sampler s(sampling(t, 1, 1.0, seed));
      for (int i = 0; i < 20; ++i) ASSERT_EQ(s.next(logits.data(), 5), 1) << "seed " << seed << " T " << t;
    }
  }
  const std::vector<float> ties = {3.0f, 5.0f, 5.0f};
  Sampler s(sampling(1.0, 1, 1.0, 3));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.next(ties.data(), 3), 1);  // first of the tied maxima, as greedy
}

TEST(Sampler, SeededSamplingIsReproducible) {
  std::vector<float> logits(50);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i)) * 2.0f;
  auto run = [&](uint64_t seed) {
    Sampler s(sampling(0.9, 20, 0.95, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.next(logits.data(), 50));
    return out;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
}

TEST(Sampler, TemperatureSamplesSoftmaxOfScaledLogits) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f};
  for (double t : {0.5, 1.0, 2.0}) {
    SCOPED_TRACE(t);
    Sampler s(sampling(t, 0, 1.0, 42));
    const auto freq = frequencies(s, logits, 20000);
    const auto p = softmax(logits, t);
    // One standard deviation is at most sqrt(0.25 / 20000) = 0.0035; 0.02 is over 5 of them.
    for (std::size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(freq[i], p[i], 0.02) << "token " << i;
  }
}

TEST(Sampler, TopKRenormalizesOverTheKLargest) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 1.8f, -1.0f};
  Sampler s(sampling(1.0, 2, 1.0, 7));
  const auto freq = frequencies(s, logits, 20000);
  const auto p = softmax({2.0f, 1.8f}, 1.0);
  EXPECT_NEAR(freq[1], p[0], 0.02);
  EXPECT_NEAR(freq[3], p[1], 0.02);
  EXPECT_EQ(freq[0], 0.0);
  EXPECT_EQ(freq[2], 0.0);
  EXPECT_EQ(freq[4], 0.0);
}

TEST(Sampler, TopPNeverDrawsOutsideTheNucleus) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 keeps the first two (0.5 < 0.75 <= 0.8).
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  Sampler s(sampling(1.0, 0, 0.75, 11));
  const auto freq = frequencies(s, logits, 20000);
  EXPECT_EQ(freq[2], 0.0);
  EXPECT_EQ(freq[3], 0.0);
  EXPECT_NEAR(freq[0], 0.5 / 0.8, 0.02);
  EXPECT_NEAR(freq[1], 0.3 / 0.8, 0.02);

  // A small top_p keeps only the most likely token.
  Sampler narrow(sampling(1.0, 0, 0.3, 5));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(narrow.next(logits.data(), 4), 0);

  // With the order scrambled, the nucleus is still chosen by probability, not by index.
  const std::vector<float> scrambled = {logits[3], logits[1], logits[2], logits[0]};
  Sampler s2(sampling(1.0, 0, 0.9, 13));  // 0.5 + 0.3 < 0.9 <= 0.95: keeps three
  const auto f2 = frequencies(s2, scrambled, 20000);
  EXPECT_EQ(f2[0], 0.0);
  EXPECT_NEAR(f2[3], 0.5 / 0.95, 0.02);
  EXPECT_NEAR(f2[1], 0.3 / 0.95, 0.02);
  EXPECT_NEAR(f2[2], 0.15 / 0.95, 0.02);
}

std::string construct_error(const SamplingParams& p) {
  try {
    Sampler s(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Sampler, InvalidParametersThrow) {
  EXPECT_THAT(construct_error(sampling(0.0, 0, 1.0, 0)), HasSubstr("temperature"));
  EXPECT_THAT(construct_error(sampling(-1.0, 0, 1.0, 0)), HasSubstr("temperature"));
  EXPECT_THAT(construct_error(sampling(std::nan(""), 0, 1.0, 0)), HasSubstr("temperature"));
  EXPECT_THAT(construct_error(sampling(1.0, -1, 1.0, 0)), HasSubstr("top_k"));
  EXPECT_THAT(construct_error(sampling(1.0, 0, 0.0, 0)), HasSubstr("top_p"));
  EXPECT_THAT(construct_error(sampling(1.0, 0, 1.5, 0)), HasSubstr("top_p"));
  EXPECT_THAT(construct_error(sampling(1.0, 0, -0.2, 0)), HasSubstr("top_p"));
  EXPECT_THAT(construct_error(sampling(1.0, 0, std::nan(""), 0)), HasSubstr("top_p"));
  EXPECT_EQ(construct_error(sampling(1e-3, 1000, 1.0, 0)), "no error");  // top_k above the vocabulary is fine
}

}  // namespace
}  // namespace kiln::runtime

namespace kiln::runtime {
namespace {

TEST(SamplerPenalty, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p;
  p.repetition_penalty = 2.0;
  Sampler s(p);
  const std::vector<float> positive{3.f, 2.f, -1.f, 0.5f};
  EXPECT_EQ(s.next(positive.data(), 4), 0);          // no history: plain argmax
  EXPECT_EQ(s.next(positive.data(), 4, {0}), 1);     // 3 / 2 = 1.5 < 2
  EXPECT_EQ(s.next(positive.data(), 4, {0, 0}), 1);  // a repeated id is penalized once, as HF
  const std::vector<float> negative{-1.f, -1.5f};
  EXPECT_EQ(s.next(negative.data(), 2, {0}), 1);  // -1 * 2 = -2 < -1.5
  p.repetition_penalty = 0;
  EXPECT_THROW(Sampler{p}, kiln::Error);
}

TEST(SamplerPenalty, LogProbabilityIsLogSoftmax) {
  const std::vector<float> logits{1.f, 2.f, 3.f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int32_t t = 0; t < 3; ++t) {
    EXPECT_NEAR(log_probability(logits.data(), 3, t), logits[t] - std::log(z), 1e-6);
  }
}

}  // namespace
}  // namespace kiln::runtime

namespace kiln::runtime {
namespace {

// Probabilities 1/6, 2/6, 3/6 for tokens 0, 1, 2: sorted 2, 1, 0 with
// cumulative 1/2, 5/6, 1. The draw u picks the first token whose cumulative
// probability exceeds u (times the kept mass under top-p).
TEST(SampleToken, IsTheInverseCdfOfTheSortedDistribution) {
  const std::vector<float> logits = {0.f, std::log(2.f), std::log(3.f)};
  SamplingParams p;
  p.greedy = false;
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.40), 2);
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.60), 1);
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.90), 0);
  // top_p 0.8 keeps {2, 1} (mass 5/6): u = 0.9 * 5/6 = 0.75 lands on token 1.
  p.top_p = 0.8;
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.90), 1);
  // top_k 1 keeps token 2 whatever the draw.
  p.top_p = 1.0;
  p.top_k = 1;
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.99), 2);
}

TEST(SampleToken, PenaltyAppliesToHistoryTokensOnce) {
  // Token 2 (logit 3) seen twice: 3 / 2 = 1.5 < 2, so greedy picks token 1.
  const std::vector<float> logits = {1.f, 2.f, 3.f};
  SamplingParams p;
  p.repetition_penalty = 2.0;
  const std::vector<int32_t> history = {2, 2};
  EXPECT_EQ(sample_token(logits.data(), 3, p, &history, 0.0), 1);
  EXPECT_EQ(sample_token(logits.data(), 3, p, nullptr, 0.0), 2);
}

// What device sampling relies on: a Sampler's tokens are sample_token's with
// the draws of a generator seeded alike, one draw per token.
TEST(SampleToken, SamplerNextIsSampleTokenWithItsDraws) {
  const std::vector<float> logits = {0.3f, -1.f, 2.f, 0.7f, 1.1f, -0.2f};
  SamplingParams p;
  p.greedy = false;
  p.temperature = 0.8;
  p.top_p = 0.9;
  p.seed = 1234;
  Sampler sampler(p);
  std::mt19937_64 rng(p.seed);
  for (int i = 0; i < 200; ++i) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    ASSERT_EQ(sampler.next(logits.data(), 6), sample_token(logits.data(), 6, p, nullptr, u)) << "draw " << i;
  }
}

}  // namespace
}  // namespace kiln::runtime
