// fp16 / bf16 <-> fp32 conversions against bit patterns worked out by hand from
// the IEEE 754 binary16 and bfloat16 layouts, and parse_dtype's aliases.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "core/error.h"

namespace kiln {
namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

bool is_f16_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0; }

TEST(Fp16, DecodesKnownBitPatterns) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);                         // largest finite
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));            // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), 1023.0f * std::ldexp(1.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));            // smallest normal
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x3555), 0.25f * (1.0f + 0x155 / 1024.0f));  // exponent 13: 2^-2 * (1 + 0x155/1024)
  EXPECT_EQ(bits_of(f16_to_f32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(f16_to_f32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // lowest mantissa bit alone is still NaN
}

TEST(Fp16, EncodesKnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
}

TEST(Fp16, OverflowsToInfinityAtTheRoundingBoundary) {
  // 65520 is halfway between 65504 (0x7bff, odd) and 65536 (would be 0x7c00): ties to even -> inf.
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(Fp16, UnderflowsAndRoundsSubnormalsToNearestEven) {
  const float unit = std::ldexp(1.0f, -24);
  EXPECT_EQ(f32_to_f16(0.5f * unit), 0x0000);  // tie between 0 and 1 unit: even is 0
  EXPECT_EQ(f32_to_f16(std::nextafter(0.5f * unit, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(1.5f * unit), 0x0002);  // tie between 1 and 2: even is 2
  EXPECT_EQ(f32_to_f16(2.5f * unit), 0x0002);  // tie between 2 and 3: even is 2
  EXPECT_EQ(f32_to_f16(-1.5f * unit), 0x8002);
  EXPECT_EQ(f32_to_f16(0.25f * unit), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.25f * unit), 0x8000);
  // Halfway between the largest subnormal 0x03ff (odd) and the smallest normal 0x0400.
  EXPECT_EQ(f32_to_f16(1023.5f * unit), 0x0400);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(Fp16, RoundsNormalsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);           // spacing of fp16 in [1, 2)
  EXPECT_EQ(f32_to_f16(1.0f + 0.5f * ulp), 0x3c00);  // tie, 0x3c00 even
  EXPECT_EQ(f32_to_f16(1.0f + 1.5f * ulp), 0x3c02);  // tie between 0x3c01 and 0x3c02
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + 0.5f * ulp, 2.0f)), 0x3c01);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + 1.5f * ulp, 0.0f)), 0x3c01);
  EXPECT_EQ(f32_to_f16(-(1.0f + 0.5f * ulp)), 0xbc00);
  // Tie at a binade boundary: 2 - ulp/2 is halfway between 0x3fff (odd) and 2.0 (0x4000).
  EXPECT_EQ(f32_to_f16(2.0f - 0.5f * ulp), 0x4000);
  EXPECT_EQ(f32_to_f16(std::nextafter(2.0f - 0.5f * ulp, 0.0f)), 0x3fff);
}

TEST(Fp16, NanStaysNan) {
  EXPECT_TRUE(is_f16_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_f16_nan(f32_to_f16(from_bits(0x7f800001u))));  // payload only in bits dropped by the cast
  EXPECT_TRUE(is_f16_nan(f32_to_f16(from_bits(0xffc00000u))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Fp16, EveryNonNanPatternRoundTripsThroughF32) {
  int checked = 0;
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    if (is_f16_nan(bits)) continue;
    const float f = f16_to_f32(bits);
    ASSERT_EQ(f32_to_f16(f), bits) << "pattern 0x" << std::hex << h << " decoded to " << f;
    ++checked;
  }
  EXPECT_EQ(checked, 65536 - 2 * 1023);  // all but the NaNs of either sign
}

TEST(Fp16, DecodesEveryFinitePatternByTheFormula) {
  // Each finite fp16 value equals the formula (-1)^s 2^(e-15) (1 + m/1024), or m 2^-24 for e == 0.
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const uint32_t e = h >> 10, m = h & 0x3ffu;
    const double expected = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                                   : std::ldexp(1.0 + static_cast<double>(m) / 1024.0, static_cast<int>(e) - 15);
    ASSERT_EQ(static_cast<double>(f16_to_f32(static_cast<uint16_t>(h))), expected) << std::hex << h;
    ASSERT_EQ(static_cast<double>(f16_to_f32(static_cast<uint16_t>(h | 0x8000u))), -expected) << std::hex << h;
  }
}

TEST(Bf16, ConvertsKnownBitPatterns) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(bf16_to_f32(0x7f7f), std::ldexp(255.0f / 128.0f, 127));
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_bf16(65504.0f), 0x4780);  // 65504 = 2^15 * 1.999..., rounds up to 65536
  EXPECT_EQ(f32_to_bf16(std::ldexp(1.0f, -133)), 0x0001);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
}

TEST(Bf16, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7);             // spacing of bf16 in [1, 2)
  EXPECT_EQ(f32_to_bf16(1.0f + 0.5f * ulp), 0x3f80);  // tie, even
  EXPECT_EQ(f32_to_bf16(1.0f + 1.5f * ulp), 0x3f82);  // tie between 0x3f81 and 0x3f82
  EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + 0.5f * ulp, 2.0f)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + 1.5f * ulp, 0.0f)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-(1.0f + 1.5f * ulp)), 0xbf82);
  // Largest finite fp32 rounds past bf16's largest finite (0x7f7f) to infinity.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);  // just under the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f8000u)), 0x7f80);  // the tie: 0x7f7f odd -> up
}

TEST(Bf16, NanStaysNan) {
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose mantissa bits all fall below bf16's would become infinity if truncated.
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(from_bits(0x7f800001u))));
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(from_bits(0xff80ffffu))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
}

TEST(Bf16, EveryNonNanPatternRoundTripsThroughF32) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    if (is_bf16_nan(bits)) continue;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(bits)), bits) << std::hex << h;
    ASSERT_EQ(bits_of(bf16_to_f32(bits)), h << 16) << std::hex << h;
  }
}

TEST(Convert, ArraysMatchTheScalarConversions) {
  const std::vector<float> values = {1.0f, -2.0f, 65504.0f, 3.14159f, -1e-6f, 0.0f};
  std::vector<uint16_t> half(values.size()), brain(values.size());
  convert_from_f32(values.data(), DType::f16, half.data(), values.size());
  convert_from_f32(values.data(), DType::bf16, brain.data(), values.size());
  std::vector<float> back_half(values.size()), back_brain(values.size()), from_double(values.size());
  convert_to_f32(DType::f16, half.data(), back_half.data(), values.size());
  convert_to_f32(DType::bf16, brain.data(), back_brain.data(), values.size());
  const std::vector<double> doubles(values.begin(), values.end());
  convert_to_f32(DType::f64, doubles.data(), from_double.data(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(half[i], f32_to_f16(values[i]));
    EXPECT_EQ(brain[i], f32_to_bf16(values[i]));
    EXPECT_EQ(back_half[i], f16_to_f32(half[i]));
    EXPECT_EQ(back_brain[i], bf16_to_f32(brain[i]));
    EXPECT_EQ(from_double[i], values[i]);
  }
  int32_t ints[2] = {1, 2};
  float out[2];
  EXPECT_THROW(convert_to_f32(DType::i32, ints, out, 2), Error);
  EXPECT_THROW(convert_from_f32(out, DType::i8, ints, 2), Error);
}

// The array conversions are branch-free rewrites (so that they vectorize) of
// the scalar ones, which are the definitions: they must agree on every input.
TEST(Convert, F16ArraysMatchTheScalarConversionsOnEveryPattern) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h <= 0xffffu; ++h) all[h] = static_cast<uint16_t>(h);
  std::vector<float> wide(all.size());
  convert_to_f32(DType::f16, all.data(), wide.data(), all.size());
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    ASSERT_EQ(bits_of(wide[h]), bits_of(f16_to_f32(all[h]))) << std::hex << h;
  }
  // fp32 -> fp16: every sign, exponent and top mantissa bits, with the low bits
  // that decide rounding (zero, one, just under, at and just over half of an
  // fp16 ulp, all ones), and a spread of other patterns.
  std::vector<float> values;
  for (uint32_t high = 0; high <= 0xffffu; ++high) {
    for (uint32_t low : {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u, 0x2000u, 0x7fffu, 0x8000u, 0xffffu}) {
      values.push_back(from_bits(high << 16 | low));
    }
  }
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 0x10001u * 61) values.push_back(from_bits(uint32_t(bits)));
  std::vector<uint16_t> half(values.size());
  convert_from_f32(values.data(), DType::f16, half.data(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(half[i], f32_to_f16(values[i])) << std::hex << bits_of(values[i]);
  }
}

TEST(Convert, ConvertIsACopyOrTheTwoStepConversion) {
  std::vector<float> values;
  for (uint32_t high = 0; high <= 0xffffu; high += 7)
    values.push_back(from_bits(high << 16 | (high * 2654435761u >> 16)));
  const std::size_t n = values.size();  // more than one block of convert's fp32 staging
  std::vector<uint16_t> half(n), brain(n), got(n);
  convert_from_f32(values.data(), DType::f16, half.data(), n);
  convert_from_f32(values.data(), DType::bf16, brain.data(), n);
  for (auto [from, to, src, expected] :
       {std::tuple{DType::f16, DType::bf16, &half, &brain}, std::tuple{DType::bf16, DType::f16, &brain, &half}}) {
    // 16-bit to 16-bit: through fp32, where the conversion from 16 bits is exact.
    std::vector<float> wide(n);
    convert_to_f32(from, src->data(), wide.data(), n);
    std::vector<uint16_t> two_step(n);
    convert_from_f32(wide.data(), to, two_step.data(), n);
    convert(from, src->data(), to, got.data(), n);
    EXPECT_EQ(got, two_step);
    convert(from, src->data(), from, got.data(), n);
    EXPECT_EQ(got, *src) << "same dtype: a copy";
  }
  std::vector<float> back(n);
  convert(DType::bf16, brain.data(), DType::f32, back.data(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(back[i]), bits_of(bf16_to_f32(brain[i])));
  convert(DType::f32, values.data(), DType::bf16, got.data(), n);
  EXPECT_EQ(got, brain);
  const std::vector<double> doubles = {1.0, 1.0 + 1e-12, -3.5, 65504.0};
  std::vector<uint16_t> from_double(doubles.size());
  convert(DType::f64, doubles.data(), DType::f16, from_double.data(), doubles.size());
  for (std::size_t i = 0; i < doubles.size(); ++i) {
    EXPECT_EQ(from_double[i], f32_to_f16(static_cast<float>(doubles[i])));
  }
  int32_t ints[2] = {1, 2};
  EXPECT_THROW(convert(DType::i32, ints, DType::f16, got.data(), 2), Error);
  EXPECT_THROW(convert(DType::f16, half.data(), DType::i8, ints, 2), Error);
}

TEST(ParseDtype, AcceptsCanonicalNamesAndAliases) {
  const std::pair<const char*, DType> cases[] = {
      {"fp32", DType::f32},    {"float32", DType::f32}, {"float", DType::f32},    {"fp16", DType::f16},
      {"float16", DType::f16}, {"half", DType::f16},    {"bf16", DType::bf16},    {"bfloat16", DType::bf16},
      {"fp64", DType::f64},    {"float64", DType::f64}, {"int8", DType::i8},      {"int32", DType::i32},
      {"int64", DType::i64},   {"uint8", DType::u8},    {"bool", DType::boolean},
  };
  for (const auto& [name, expected] : cases) {
    DType t = expected == DType::boolean ? DType::f32 : DType::boolean;
    EXPECT_TRUE(parse_dtype(name, &t)) << name;
    EXPECT_EQ(t, expected) << name;
  }
}

TEST(ParseDtype, CanonicalNamesRoundTripAndUnknownNamesFail) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8, DType::i32, DType::i64, DType::u8,
                  DType::boolean}) {
    DType parsed = t == DType::f32 ? DType::f16 : DType::f32;
    EXPECT_TRUE(parse_dtype(dtype_name(t), &parsed)) << dtype_name(t);
    EXPECT_EQ(parsed, t);
  }
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  DType t = DType::f16;
  for (const char* bad : {"", "FP32", "float8", "fp 16", "bfloat", "int4"}) {
    EXPECT_FALSE(parse_dtype(bad, &t)) << bad;
  }
  EXPECT_EQ(t, DType::f16);  // untouched on failure
}

}  // namespace
}  // namespace kiln
