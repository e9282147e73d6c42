#include "runtime/cpu/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define KILN_AVX2 1
#endif

namespace kiln::runtime::cpu {
namespace {

// Loads 8 weights of type T as fp32.
#ifdef KILN_AVX2
template <DType T>
inline __m256 load8(const void* p, int64_t i) {
  if constexpr (T == DType::f32) {
    return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  } else if constexpr (T == DType::bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    return _mm256_cvtph_ps(h);
  }
}

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}
#endif

template <DType T>
inline float weight_at(const void* w, int64_t i) {
  if constexpr (T == DType::f32) return static_cast<const float*>(w)[i];
  if constexpr (T == DType::bf16) return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
  return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
}

// Dot products of up to 4 activation rows with one weight row, sharing each
// weight load across the rows (decode is weight-bandwidth bound).
template <DType T, int R>
inline void dot_rows(const float* const* xs, const void* w, int64_t n, float* results) {
  int64_t i = 0;
#ifdef KILN_AVX2
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = load8<T>(w, i), w1 = load8<T>(w, i + 8);
    for (int r = 0; r < R; ++r) {
      acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[r] + i), w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xs[r] + i + 8), w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) results[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
#else
  for (int r = 0; r < R; ++r) results[r] = 0.f;
#endif
  for (; i < n; ++i) {
    const float wi = weight_at<T>(w, i);
    for (int r = 0; r < R; ++r) results[r] += xs[r][i] * wi;
  }
}

template <DType T>
void linear_typed(const float* x, int64_t rows, int64_t in, const void* w, int64_t out_features, const float* bias,
                  float* out) {
  constexpr int64_t kRowTile = 4;    // activation rows per weight-row pass
  constexpr int64_t kOutBlock = 16;  // weight rows per task
  constexpr int64_t kRowBlock = 64;  // activation rows kept hot per block
  const std::size_t wbytes = dtype_size(T);
  ThreadPool::current().parallel_for(
      (out_features + kOutBlock - 1) / kOutBlock, std::max<int64_t>(1, 8 / std::max<int64_t>(1, rows)),
      [&](int64_t b0, int64_t b1) {
        for (int64_t rb = 0; rb < rows; rb += kRowBlock) {
          const int64_t rend = std::min(rows, rb + kRowBlock);
          for (int64_t o = b0 * kOutBlock; o < std::min(out_features, b1 * kOutBlock); ++o) {
            const void* wrow = static_cast<const char*>(w) + static_cast<std::size_t>(o * in) * wbytes;
            const float b = bias ? bias[o] : 0.f;
            int64_t r = rb;
            for (; r + kRowTile <= rend; r += kRowTile) {
              const float* xs[kRowTile] = {x + r * in, x + (r + 1) * in, x + (r + 2) * in, x + (r + 3) * in};
              float res[kRowTile];
              dot_rows<T, kRowTile>(xs, wrow, in, res);
              for (int k = 0; k < kRowTile; ++k) out[(r + k) * out_features + o] = res[k] + b;
            }
            for (; r < rend; ++r) {
              const float* xs[1] = {x + r * in};
              float res[1];
              dot_rows<T, 1>(xs, wrow, in, res);
              out[r * out_features + o] = res[0] + b;
            }
          }
        }
      });
}

}  // namespace

void linear(const float* x, int64_t rows, int64_t in, const void* w, DType wtype, int64_t out_features,
            const float* bias, float* out) {
  switch (wtype) {
    case DType::f32: return linear_typed<DType::f32>(x, rows, in, w, out_features, bias, out);
    case DType::bf16: return linear_typed<DType::bf16>(x, rows, in, w, out_features, bias, out);
    case DType::f16: return linear_typed<DType::f16>(x, rows, in, w, out_features, bias, out);
    default: break;
  }
}

void rms_norm(const float* x, const float* w, double eps, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(xr[c]) * xr[c];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(cols) + eps));
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = xr[c] * scale * w[c];
  }
}

void layer_norm(const float* x, const float* w, const float* b, double eps, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double mean = 0;
    for (int64_t c = 0; c < cols; ++c) mean += xr[c];
    mean /= static_cast<double>(cols);
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= static_cast<double>(cols);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t c = 0; c < cols; ++c) {
      out[r * cols + c] = static_cast<float>((xr[c] - mean) * inv) * w[c] + (b ? b[c] : 0.f);
    }
  }
}

float silu(float x) { return x / (1.f + std::exp(-x)); }
float gelu(float x) { return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f)); }
float gelu_tanh(float x) { return 0.5f * x * (1.f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x))); }

void softmax_inplace(float* s, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, s[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    s[i] = s[i] == -INFINITY ? 0.f : std::exp(s[i] - mx);
    sum += s[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

}  // namespace kiln::runtime::cpu
