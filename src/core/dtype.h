// Element types kiln stores and computes with, and exact conversions between
// the 16-bit float formats and fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kiln {

// f8e4m3: FP8 E4M3 (core/fp8.h), the quantized engines' weight format.
enum class DType { f32, f16, bf16, f64, i8, i32, i64, u8, boolean, f8e4m3 };

// Bytes per element.
std::size_t dtype_size(DType t);
// Canonical lower-case name used in manifests and messages: "fp32", "fp16", "bf16", ...
std::string_view dtype_name(DType t);
// Parses a canonical name or a common alias ("float32", "float16", "bfloat16", "half").
// Returns false when the name is unknown.
bool parse_dtype(std::string_view name, DType* out);
bool is_float(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even, as torch does when casting fp32 to bf16; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of a float type (f32, f16, bf16, f64) to fp32.
void convert_to_f32(DType src_type, const void* src, float* dst, std::size_t n);
// Converts n fp32 values to a float type (f32, f16, bf16).
void convert_from_f32(const float* src, DType dst_type, void* dst, std::size_t n);
// Converts n elements of a float type (f32, f16, bf16, f64) to f32, f16 or bf16:
// a copy when the types match, otherwise exactly as convert_to_f32 followed by
// convert_from_f32 (16-bit to 16-bit conversions round once, from the exact fp32).
void convert(DType src_type, const void* src, DType dst_type, void* dst, std::size_t n);

}  // namespace kiln
