// Rotary frequencies and ALiBi slopes against formulas written out here from
// transformers' rope utilities and the BLOOM/Baichuan slope code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "runtime/decoder_graph.h"
#include "runtime/rope_table.h"

namespace kiln::runtime {
namespace {

RopeSpec rope(int64_t dim, double theta) {
  RopeSpec r;
  r.rotary_dim = dim;
  r.theta = theta;
  return r;
}

// transformers' _compute_default_rope_parameters: 1 / theta^(2i / dim).
std::vector<double> default_freqs(int64_t dim, double theta) {
  std::vector<double> out;
  for (int64_t i = 0; i < dim; i += 2) out.push_back(1.0 / std::pow(theta, double(i) / double(dim)));
  return out;
}

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-14 * std::fabs(expected[i])) << "pair " << i;
  }
}

TEST(RopeInvFreq, DefaultFollowsTheThetaPowerLaw) {
  expect_close(rope_inv_freq(rope(16, 10000.0)), default_freqs(16, 10000.0));
  expect_close(rope_inv_freq(rope(128, 500000.0)), default_freqs(128, 500000.0));
  // Spot values: pair 0 always 1; for dim 4, theta 100: pair 1 is 100^-0.5 = 0.1.
  const auto small = rope_inv_freq(rope(4, 100.0));
  ASSERT_EQ(small.size(), 2u);
  EXPECT_DOUBLE_EQ(small[0], 1.0);
  EXPECT_DOUBLE_EQ(small[1], 0.1);
}

TEST(RopeInvFreq, LinearDividesEveryFrequencyByTheFactor) {
  RopeSpec r = rope(32, 10000.0);
  r.scaling = RopeScaling::linear;
  r.factor = 4.0;
  auto expected = default_freqs(32, 10000.0);
  for (auto& f : expected) f /= 4.0;
  expect_close(rope_inv_freq(r), expected);
}

// transformers' _compute_llama3_parameters, written out per frequency.
std::vector<double> llama3_freqs(int64_t dim, double theta, double factor, double low, double high, double orig) {
  std::vector<double> out;
  for (double f : default_freqs(dim, theta)) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < orig / high) {
      out.push_back(f);
    } else if (wavelen > orig / low) {
      out.push_back(f / factor);
    } else {
      const double smooth = (orig / wavelen - low) / (high - low);
      out.push_back((1 - smooth) * f / factor + smooth * f);
    }
  }
  return out;
}

TEST(RopeInvFreq, Llama3ScalingKeepsHighDividesLowAndBlendsTheBand) {
  // The llama3 fixture's settings: theta 5e5, head 16, factor 8, low 1, high 4, original 64.
  RopeSpec r = rope(16, 500000.0);
  r.scaling = RopeScaling::llama3;
  r.factor = 8.0;
  r.low_freq_factor = 1.0;
  r.high_freq_factor = 4.0;
  r.original_max_positions = 64;
  const auto expected = llama3_freqs(16, 500000.0, 8.0, 1.0, 4.0, 64.0);
  const auto actual = rope_inv_freq(r);
  expect_close(actual, expected);

  // All three regimes occur (wavelengths 16 .. 64 are blended), so the test exercises each branch.
  int kept = 0, divided = 0, blended = 0;
  const auto base = default_freqs(16, 500000.0);
  for (std::size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (wavelen < 16) {
      ++kept;
      EXPECT_EQ(actual[i], base[i]);
    } else if (wavelen > 64) {
      ++divided;
      EXPECT_NEAR(actual[i], base[i] / 8, 1e-15);
    } else {
      ++blended;
      EXPECT_LT(actual[i], base[i]);
      EXPECT_GT(actual[i], base[i] / 8);
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);

  // Llama 3.1's real settings: head 128, theta 5e5, factor 8, low 1, high 4, original 8192.
  RopeSpec big = rope(128, 500000.0);
  big.scaling = RopeScaling::llama3;
  big.factor = 8.0;
  big.low_freq_factor = 1.0;
  big.high_freq_factor = 4.0;
  big.original_max_positions = 8192;
  expect_close(rope_inv_freq(big), llama3_freqs(128, 500000.0, 8.0, 1.0, 4.0, 8192.0));
}

// The bf16 value nearest to x (ties to even), found by comparing neighbours in double.
double nearest_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t lo_bits = bits & 0xffff0000u, hi_bits = lo_bits + 0x10000u;
  float lo, hi;
  std::memcpy(&lo, &lo_bits, 4);
  std::memcpy(&hi, &hi_bits, 4);
  const double dl = double(x) - lo, dh = double(hi) - x;
  if (dl != dh) return dl < dh ? lo : hi;
  return (lo_bits & 0x10000u) ? hi : lo;
}

TEST(RopeInvFreq, FrequencyDtypeBf16RoundsEachFrequency) {
  RopeSpec r = rope(64, 10000.0);
  r.frequency_dtype = DType::bf16;
  const auto actual = rope_inv_freq(r);
  const auto exact = default_freqs(64, 10000.0);
  ASSERT_EQ(actual.size(), exact.size());
  int changed = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    // As HF: inv_freq computed in fp32, then the buffer cast to the model's dtype.
    EXPECT_EQ(actual[i], nearest_bf16(static_cast<float>(exact[i]))) << "pair " << i;
    EXPECT_NEAR(actual[i], exact[i], exact[i] * std::ldexp(1.0, -8)) << "within half a bf16 ulp";
    if (actual[i] != exact[i]) ++changed;
  }
  EXPECT_GT(changed, 16);

  // Rounding applies after scaling.
  r.scaling = RopeScaling::linear;
  r.factor = 3.0;
  const auto scaled = rope_inv_freq(r);
  for (std::size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(scaled[i], nearest_bf16(static_cast<float>(exact[i] / 3.0))) << "pair " << i;
  }
}

TEST(RopeTable, HoldsCosAndSinOfPositionTimesFrequency) {
  RopeSpec r = rope(8, 10000.0);
  const RopeTable t = RopeTable::build(r, 50);
  EXPECT_EQ(t.half, 4);
  EXPECT_EQ(t.positions, 50);
  ASSERT_EQ(t.cos.size(), 200u);
  ASSERT_EQ(t.sin.size(), 200u);
  const auto f = default_freqs(8, 10000.0);
  for (int64_t p = 0; p < 50; ++p) {
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(t.cos[p * 4 + i], std::cos(p * f[i]), 1e-7) << p << "," << i;
      EXPECT_NEAR(t.sin[p * 4 + i], std::sin(p * f[i]), 1e-7) << p << "," << i;
    }
  }
  EXPECT_EQ(t.cos[0], 1.0f);
  EXPECT_EQ(t.sin[0], 0.0f);
  EXPECT_NEAR(t.sin[4], std::sin(1.0), 1e-7);  // position 1, pair 0: angle 1 rad
}

void expect_slopes(int64_t heads, const std::vector<double>& expected) {
  SCOPED_TRACE(heads);
  const auto s = alibi_slopes(heads);
  ASSERT_EQ(s.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(s[i], expected[i], 1e-7 * expected[i]) << "head " << i;
  }
}

TEST(AlibiSlopes, PowersOfTwoHeads) {
  // n heads: 2^(-8/n * (i+1)).
  expect_slopes(4, {0.25, 1.0 / 16, 1.0 / 64, 1.0 / 256});
  expect_slopes(8, {0.5, 0.25, 0.125, 1.0 / 16, 1.0 / 32, 1.0 / 64, 1.0 / 128, 1.0 / 256});
  std::vector<double> sixteen;
  for (int i = 0; i < 16; ++i) sixteen.push_back(std::pow(2.0, -0.5 * (i + 1)));
  expect_slopes(16, sixteen);
  expect_slopes(1, {1.0 / 256});
}

TEST(AlibiSlopes, OtherHeadCountsTakeEveryOtherSlopeOfTheNextPowerOfTwo) {
  // 6 heads: the 4 slopes of n=4, then slopes 0 and 2 of n=8's list.
  expect_slopes(6, {0.25, 1.0 / 16, 1.0 / 64, 1.0 / 256, 0.5, 0.125});
  // 12 heads: n=8's 8 slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 (slopes 0, 2, 4, 6 of n=16).
  std::vector<double> twelve;
  for (int i = 0; i < 8; ++i) twelve.push_back(std::pow(2.0, -(i + 1)));
  for (int i = 0; i < 4; ++i) twelve.push_back(std::pow(2.0, -0.5 - i));
  expect_slopes(12, twelve);
  // 40 heads (Baichuan-13B): 32 of n=32, then 8 of n=64 at even indices: 2^(-8/64 * (2j+1)).
  std::vector<double> forty;
  for (int i = 0; i < 32; ++i) forty.push_back(std::pow(2.0, -0.25 * (i + 1)));
  for (int j = 0; j < 8; ++j) forty.push_back(std::pow(2.0, -0.125 * (2 * j + 1)));
  expect_slopes(40, forty);
}

}  // namespace
}  // namespace kiln::runtime
