#include "core/fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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
  // Integer arithmetic on the fp32 bits (a build converts billions of weights):
  // round the 23-bit mantissa to 3 bits to nearest even by adding just under
  // half of the dropped part plus the kept part's last bit, letting a carry
  // move into the exponent, then rebias the exponent from 127 to 7.
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint8_t sign = static_cast<uint8_t>(bits >> 24) & 0x80;
  const uint32_t a = bits & 0x7fffffffu;
  constexpr uint32_t k464 = 0x43e80000u;        // NaN, infinities, and what would round to 480 (464 ties to 448)
  constexpr uint32_t kMinNormal = 0x3c800000u;  // 2^-6
  if (!(a <= k464)) return sign | kE4m3Nan;
  if (a < kMinNormal) {
    // Subnormal: units of 2^-9, rounded by the FPU's own ties-to-even on an
    // add that leaves no bits below the units place (2^23 x 2^-9 = 2^14).
    float magnitude;
    std::memcpy(&magnitude, &a, sizeof magnitude);
    const float rounded = (magnitude + 16384.0f) - 16384.0f;  // a multiple of 2^-9 in [0, 2^-6]
    return sign | static_cast<uint8_t>(rounded * 512.0f);
  }
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);
  return sign | static_cast<uint8_t>((r >> 20) - ((127u - 7u) << 3));
}

namespace {

// The largest magnitude's bits among n values of `Bits`, NaNs (magnitudes
// above infinity's) left out. Branch-free, so the compiler vectorizes it.
template <typename Bits>
Bits max_magnitude_bits(const Bits* v, int64_t n, Bits infinity) {
  // (Not ~Bits{0} >> 1: a uint16_t promotes to int, and -1 >> 1 is -1.)
  constexpr Bits kMagnitude = static_cast<Bits>(std::numeric_limits<Bits>::max() >> 1);
  const auto finite_magnitude = [infinity](Bits bits) {
    const Bits a = static_cast<Bits>(bits & kMagnitude);
    return a > infinity ? Bits{0} : a;
  };
  // 32 running maxima, one per lane of a block, so the compiler turns the
  // blocks into vector max instructions (a single running maximum stays scalar).
  constexpr int kLanes = 32;
  Bits lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] = std::max(lanes[j], finite_magnitude(v[i + j]));
  }
  Bits amax = 0;
  for (; i < n; ++i) amax = std::max(amax, finite_magnitude(v[i]));
  for (const Bits lane : lanes) amax = std::max(amax, lane);
  return amax;
}

float scale_of(float amax) { return amax > 0 ? amax / kE4m3Max : 1.0f; }

}  // namespace

float e4m3_row_scale(const float* row, int64_t cols) { return e4m3_row_scale(DType::f32, row, cols); }

float e4m3_row_scale(DType dtype, const void* row, int64_t cols) {
  switch (dtype) {
    case DType::f32: {
      const uint32_t bits = max_magnitude_bits(static_cast<const uint32_t*>(row), cols, uint32_t{0x7f800000u});
      float amax;
      std::memcpy(&amax, &bits, sizeof amax);
      return scale_of(amax);
    }
    case DType::f16:
      return scale_of(f16_to_f32(max_magnitude_bits(static_cast<const uint16_t*>(row), cols, uint16_t{0x7c00u})));
    case DType::bf16:
      return scale_of(bf16_to_f32(max_magnitude_bits(static_cast<const uint16_t*>(row), cols, uint16_t{0x7f80u})));
    default: {
      // Other float formats (none today) through fp32.
      std::vector<float> values(static_cast<std::size_t>(cols));
      convert_to_f32(dtype, row, values.data(), values.size());
      return e4m3_row_scale(values.data(), cols);
    }
  }
}

void quantize_rows_e4m3(const float* in, int64_t rows, int64_t cols, uint8_t* out, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * cols;
    scale[r] = e4m3_row_scale(row, cols);
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f32_to_e4m3(row[c] / scale[r]);
  }
}

}  // namespace kiln
