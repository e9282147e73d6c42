// CPU kernels in fp32 arithmetic over fp32, fp16 or bf16 weights. Written for
// exactness against float64 references first (no fast-math, fp32 accumulation
// in a fixed order), then speed: AVX2/FMA where the build targets it, rows
// spread over the thread pool.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::runtime::cpu {

// out[r, o] = sum_i x[r, i] * w[o, i] (+ bias[o]); w is [out_features, in_features] of `wtype`.
void linear(const float* x, int64_t rows, int64_t in_features, const void* w, DType wtype, int64_t out_features,
            const float* bias, float* out);

void rms_norm(const float* x, const float* w, double eps, int64_t rows, int64_t cols, float* out);
void layer_norm(const float* x, const float* w, const float* b, double eps, int64_t rows, int64_t cols, float* out);

float silu(float x);
float gelu(float x);       // exact (erf)
float gelu_tanh(float x);  // tanh approximation (gelu_new, gelu_pytorch_tanh)

// Softmax-weighted sum of V rows: the attention of one query head.
// scores has `n` entries (already scaled/biased, -inf for masked keys).
void softmax_inplace(float* scores, int64_t n);

}  // namespace kiln::runtime::cpu
