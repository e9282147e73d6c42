#include "core/dtype.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "core/error.h"

namespace kiln {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::f64: return 8;
    case DType::i8: return 1;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::boolean: return 1;
    case DType::f8e4m3: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "fp32";
    case DType::f16: return "fp16";
    case DType::bf16: return "bf16";
    case DType::f64: return "fp64";
    case DType::i8: return "int8";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
    case DType::f8e4m3: return "fp8_e4m3";
  }
  return "?";
}

bool parse_dtype(std::string_view name, DType* out) {
  struct Alias {
    std::string_view name;
    DType type;
  };
  static constexpr Alias kAliases[] = {
      {"fp32", DType::f32},
      {"float32", DType::f32},
      {"float", DType::f32},
      {"fp16", DType::f16},
      {"float16", DType::f16},
      {"half", DType::f16},
      {"bf16", DType::bf16},
      {"bfloat16", DType::bf16},
      {"fp64", DType::f64},
      {"float64", DType::f64},
      {"int8", DType::i8},
      {"int32", DType::i32},
      {"int64", DType::i64},
      {"uint8", DType::u8},
      {"bool", DType::boolean},
      {"fp8_e4m3", DType::f8e4m3},
      {"float8_e4m3fn", DType::f8e4m3},
  };
  for (const auto& a : kAliases) {
    if (a.name == name) {
      *out = a.type;
      return true;
    }
  }
  return false;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64; }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mantissa <<= 1;
      } while ((mantissa & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mantissa & 0x3ffu) << 13;
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | mantissa << 13;
  } else {
    bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in fp16: round to nearest even
    const float magnitude = std::fabs(f);
    const float scaled = magnitude * 16777216.0f;  // 2^24: units of the smallest subnormal
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
  }
  const uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((abs - (112u << 23) + rounding) >> 13));
}

namespace {

// Branch-free forms of f16_to_f32 / f32_to_f16 (identical results for every
// input, checked exhaustively by the tests) that the compiler vectorizes: every
// path is computed and the right one picked with masks, so an engine build
// converts at memory speed rather than one branchy element at a time.
inline float as_float(uint32_t u) { return std::bit_cast<float>(u); }
inline uint32_t as_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline uint32_t mask_if(bool b) { return 0u - static_cast<uint32_t>(b); }

void f16_array_to_f32(const uint16_t* __restrict src, float* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const uint32_t h = src[i];
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t magnitude = (h & 0x7fffu) << 13;  // exponent and mantissa in fp32 position
    const uint32_t exponent = magnitude & 0x0f800000u;
    const uint32_t rebiased = magnitude + ((127u - 15u) << 23);
    // Inf and NaN keep an all-ones exponent; zeros and subnormals renormalize through a float subtraction.
    const uint32_t normal = rebiased + (mask_if(exponent == 0x0f800000u) & ((128u - 16u) << 23));
    const uint32_t subnormal = as_bits(as_float(rebiased + (1u << 23)) - as_float(113u << 23));
    const uint32_t is_subnormal = mask_if(exponent == 0);
    dst[i] = as_float((subnormal & is_subnormal) | (normal & ~is_subnormal) | sign);
  }
}

void f32_array_to_f16(const float* __restrict src, uint16_t* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const uint32_t bits = as_bits(src[i]);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    const uint32_t abs = bits & 0x7fffffffu;
    const uint32_t normal = (abs - (112u << 23) + 0xfffu + ((abs >> 13) & 1u)) >> 13;
    // Adding 0.5 aligns the fp16 subnormal units (2^-24) with the float's last
    // mantissa bit, so the addition itself rounds to nearest even.
    const uint32_t subnormal = as_bits(as_float(abs) + 0.5f) - as_bits(0.5f);
    const uint32_t is_subnormal = mask_if(abs < 0x38800000u);
    const uint32_t is_inf = mask_if(abs >= 0x477ff000u);
    const uint32_t is_nan = mask_if(abs > 0x7f800000u);
    uint32_t r = (subnormal & is_subnormal) | (normal & ~is_subnormal);
    r = (r & ~is_inf) | (0x7c00u & is_inf);
    r = (r & ~is_nan) | (0x7e00u & is_nan);
    dst[i] = static_cast<uint16_t>(sign | r);
  }
}

void bf16_array_to_f32(const uint16_t* __restrict src, float* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void f32_array_to_bf16(const float* __restrict src, uint16_t* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace

void convert_to_f32(DType src_type, const void* src, float* dst, std::size_t n) {
  switch (src_type) {
    case DType::f32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::f16: f16_array_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::bf16: bf16_array_to_f32(static_cast<const uint16_t*>(src), dst, n); return;
    case DType::f64: {
      const auto* s = static_cast<const double*>(src);
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    default: throw_error("cannot convert ", dtype_name(src_type), " to fp32");
  }
}

void convert_from_f32(const float* src, DType dst_type, void* dst, std::size_t n) {
  switch (dst_type) {
    case DType::f32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::f16: f32_array_to_f16(src, static_cast<uint16_t*>(dst), n); return;
    case DType::bf16: f32_array_to_bf16(src, static_cast<uint16_t*>(dst), n); return;
    default: throw_error("cannot convert fp32 to ", dtype_name(dst_type));
  }
}

void convert(DType src_type, const void* src, DType dst_type, void* dst, std::size_t n) {
  if (src_type == dst_type && (is_float(src_type) || src_type == DType::f8e4m3)) {  // E4M3: stored bytes kept
    std::memcpy(dst, src, n * dtype_size(src_type));
  } else if (dst_type == DType::f32) {
    convert_to_f32(src_type, src, static_cast<float*>(dst), n);
  } else if (src_type == DType::f32) {
    convert_from_f32(static_cast<const float*>(src), dst_type, dst, n);
  } else {
    // Through fp32 a block at a time (exact for fp16 and bf16; fp64 rounds once to fp32 first, as everywhere).
    if (!is_float(src_type)) throw_error("cannot convert ", dtype_name(src_type), " to ", dtype_name(dst_type));
    if (!(dst_type == DType::f16 || dst_type == DType::bf16)) {
      throw_error("cannot convert ", dtype_name(src_type), " to ", dtype_name(dst_type));
    }
    constexpr std::size_t kBlock = 2048;
    float wide[kBlock];
    const auto* s = static_cast<const std::byte*>(src);
    auto* d = static_cast<std::byte*>(dst);
    const std::size_t src_size = dtype_size(src_type), dst_size = dtype_size(dst_type);
    for (std::size_t i = 0; i < n; i += kBlock) {
      const std::size_t m = std::min(kBlock, n - i);
      convert_to_f32(src_type, s + i * src_size, wide, m);
      convert_from_f32(wide, dst_type, d + i * dst_size, m);
    }
  }
}

}  // namespace kiln
