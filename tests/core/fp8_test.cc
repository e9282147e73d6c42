// E4M3 conversions against PyTorch's float8_e4m3fn (tests/core/data/
// e4m3_reference.json, made on the GPU machine by
// tests/core/make_e4m3_reference.py): every code's value, and the code of
// several thousand fp32 inputs chosen at ties, beside ties, in the subnormal
// range and at the overflow threshold.
#include "core/fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace kiln {
namespace {

nlohmann::json reference() {
  std::ifstream in(std::string(KILN_SOURCE_DIR) + "/tests/core/data/e4m3_reference.json");
  return nlohmann::json::parse(in);
}

TEST(Fp8, DecodesEveryCodeAsPyTorch) {
  const auto ref = reference();
  ASSERT_EQ(ref["decode"].size(), 256u);
  for (int code = 0; code < 256; ++code) {
    const auto& want = ref["decode"][static_cast<std::size_t>(code)];
    const float got = e4m3_to_f32(static_cast<uint8_t>(code));
    if (want.is_string()) {
      EXPECT_TRUE(std::isnan(got)) << code;
    } else {
      EXPECT_EQ(got, want.get<float>()) << code;
      EXPECT_EQ(std::signbit(got), std::signbit(want.get<float>())) << code;
    }
  }
}

TEST(Fp8, EncodesAsPyTorchRoundsIncludingTiesAndOverflow) {
  const auto ref = reference();
  ASSERT_GT(ref["encode"].size(), 3000u);
  int wrong = 0;
  for (const auto& pair : ref["encode"]) {
    const float x = pair[0].get<float>();
    const int want = pair[1].get<int>();
    const int got = f32_to_e4m3(x);
    if (got != want && ++wrong <= 10) ADD_FAILURE() << "e4m3(" << x << "): kiln " << got << ", torch " << want;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(Fp8, QuantizesRowsByTheirLargestMagnitude) {
  const std::vector<float> in = {1.0f, -2.0f, 0.5f, 0.0f, 0.0f, 0.0f, 3.0f, 300.0f, -600.0f};
  std::vector<uint8_t> out(in.size());
  std::vector<float> scale(3);
  quantize_rows_e4m3(in.data(), 3, 3, out.data(), scale.data());
  EXPECT_FLOAT_EQ(scale[0], 2.0f / 448);
  EXPECT_EQ(scale[1], 1.0f);  // an all-zero row
  EXPECT_FLOAT_EQ(scale[2], 600.0f / 448);
  EXPECT_EQ(out[1], 0x80 | 0x7e);  // -448: the row's largest magnitude takes the format's largest value
  EXPECT_EQ(out[8], 0x80 | 0x7e);
  EXPECT_EQ(out[3], 0);
  // Decoded and scaled back, every value is within half a step (2^-4 relative) of the original.
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float back = e4m3_to_f32(out[i]) * scale[i / 3];
    EXPECT_LE(std::fabs(back - in[i]), std::fabs(in[i]) / 16 + 1e-6f) << i;
  }
}

TEST(Fp8, RowScaleOfStoredRowsSkipsNaNsAndCountsNegatives) {
  // Longer than one 32-lane block, the largest magnitude negative and in the tail.
  std::vector<float> row(70);
  for (std::size_t i = 0; i < row.size(); ++i) row[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  row[3] = NAN;
  row[69] = -5.5f;
  std::vector<uint16_t> f16(row.size()), bf16(row.size());
  for (std::size_t i = 0; i < row.size(); ++i) {
    f16[i] = f32_to_f16(row[i]);
    bf16[i] = f32_to_bf16(row[i]);
  }
  const auto n = static_cast<int64_t>(row.size());
  EXPECT_FLOAT_EQ(e4m3_row_scale(row.data(), n), 5.5f / 448);
  EXPECT_FLOAT_EQ(e4m3_row_scale(DType::f16, f16.data(), n), 5.5f / 448);
  EXPECT_FLOAT_EQ(e4m3_row_scale(DType::bf16, bf16.data(), n), 5.5f / 448);
  row[69] = -INFINITY;  // an infinity is a magnitude, as std::fmax takes it
  EXPECT_EQ(e4m3_row_scale(row.data(), n), INFINITY);
}

}  // namespace
}  // namespace kiln
