#include "core/fp8.h"

#include <cmath>

namespace kiln {

float e4m3_to_f32(uint8_t code) {
  const bool negative = code & 0x80;
  const int exponent = (code >> 3) & 0xf, mantissa = code & 0x7;
  float v;
  if (exponent == 0xf && mantissa == 0x7) {
    v = NAN;
  } else if (exponent == 0) {
    v = std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m / 8 x 2^-6
  } else {
    v = std::ldexp(1.0f + static_cast<float>(mantissa) / 8, exponent - 7);
  }
  return negative ? -v : v;
}

uint8_t f32_to_e4m3(float value) {
  const uint8_t sign = std::signbit(value) ? 0x80 : 0;
  const double a = std::fabs(static_cast<double>(value));
  // NaN, infinities, and what would round to 480 (464 itself is a tie, to 448)
  if (!(a <= 464.0)) return sign | kE4m3Nan;
  // Exact in double: a x 2^k for the k that puts the kept bits before the
  // point; nearbyint rounds ties to even (the default rounding mode).
  if (a < std::ldexp(1.0, -6)) {  // subnormal: units of 2^-9; 8 of them is the smallest normal, 0x08
    return sign | static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9)));
  }
  int e;
  std::frexp(a, &e);  // a = f x 2^e, f in [0.5, 1): the leading bit is 2^(e-1)
  const int exponent = e - 1;
  const auto steps = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - exponent)));  // in [8, 16]
  const int biased = exponent + 7 + (steps == 16);
  const int mantissa = steps == 16 ? 0 : steps - 8;
  return sign | static_cast<uint8_t>(biased << 3 | mantissa);
}

float e4m3_row_scale(const float* row, int64_t cols) {
  float amax = 0;
  for (int64_t c = 0; c < cols; ++c) amax = std::fmax(amax, std::fabs(row[c]));
  return amax > 0 ? amax / kE4m3Max : 1.0f;
}

void quantize_rows_e4m3(const float* in, int64_t rows, int64_t cols, uint8_t* out, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * cols;
    scale[r] = e4m3_row_scale(row, cols);
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f32_to_e4m3(row[c] / scale[r]);
  }
}

}  // namespace kiln
