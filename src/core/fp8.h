// FP8 E4M3 (the "fn" variant PyTorch calls float8_e4m3fn and NVIDIA's FP8
// tensor cores read): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits,
// no infinities, NaN = S.1111.111, largest finite value 448, subnormals down
// to 2^-9. Conversions match PyTorch's casts bit for bit
// (tests/core/fp8_test.cc against tests/core/make_e4m3_reference.py).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace kiln {

inline constexpr float kE4m3Max = 448.0f;
inline constexpr uint8_t kE4m3Nan = 0x7f;

float e4m3_to_f32(uint8_t code);
// Round to nearest, ties to even. As PyTorch's cast, magnitudes above 464
// (halfway between 448 and the 480 the format lacks; 464 itself ties to 448)
// and NaN or infinite inputs give NaN: nothing saturates silently.
uint8_t f32_to_e4m3(float value);

// Per-row quantization, the FP8 weights' layout: scale[r] = max |row r| / 448
// (1 for an all-zero row), out[r][c] = e4m3(in[r][c] / scale[r]).
void quantize_rows_e4m3(const float* in, int64_t rows, int64_t cols, uint8_t* out, float* scale);
float e4m3_row_scale(const float* row, int64_t cols);
// The same scale from a row stored in `dtype` (fp32, fp16 or bf16), read in
// place: the largest magnitude is found on the bits (sign-magnitude formats
// order as their bit patterns do), so only it is converted; NaNs are skipped
// as std::fmax skips them.
float e4m3_row_scale(DType dtype, const void* row, int64_t cols);

}  // namespace kiln
