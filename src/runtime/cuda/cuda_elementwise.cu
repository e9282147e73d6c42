// Row gathers, residual adds, activations and conversions: each one pass over
// its data, grid-stride loops.
#include <algorithm>
#include <cmath>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embed_kernel(const T* table, int64_t cols, const int32_t* ids, int64_t rows, float* out) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = to_float(table[ids[r] * cols + c]);
  }
}

template <typename T>
__global__ void add_rows_kernel(const T* table, int64_t cols, const int32_t* positions, int64_t rows, float* x) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    x[i] += to_float(table[positions[r] * cols + c]);
  }
}

template <typename T>
__global__ void convert_kernel(const float* x, int64_t n, T* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = from_float<T>(x[i]);
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] += bias[i % cols];
  }
}

// blockIdx.y strides the rows, x the columns (four at a time where rows hold
// 4k values): no per-element division, 16-byte loads and stores.
__global__ void gated_activation_kernel(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float* g = gate_up + r * 2 * inner;
    float* o = out + r * inner;
    const int64_t start = blockIdx.x * int64_t{blockDim.x} + threadIdx.x, stride = int64_t{gridDim.x} * blockDim.x;
    if (inner % 4 == 0) {
      const auto* g4 = reinterpret_cast<const float4*>(g);
      const auto* u4 = reinterpret_cast<const float4*>(g + inner);
      for (int64_t i = start; i < inner / 4; i += stride) {
        const float4 a = g4[i], u = u4[i];
        reinterpret_cast<float4*>(o)[i] = make_float4(activate(act, a.x) * u.x, activate(act, a.y) * u.y,
                                                      activate(act, a.z) * u.z, activate(act, a.w) * u.w);
      }
    } else {
      for (int64_t c = start; c < inner; c += stride) o[c] = activate(act, g[c]) * g[inner + c];
    }
  }
}

__global__ void activation_kernel(Activation act, float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = activate(act, x[i]);
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] += y[i];
  }
}

__global__ void fill_kernel(float* x, float value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = value;
  }
}

__global__ void scale_add_rows_kernel(const float* src, const int64_t* rows, const float* weights, int64_t count,
                                      int64_t cols, float* out) {
  const int64_t n = count * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[rows[r] * cols + c] += weights[r] * src[i];
  }
}

__global__ void gather_rows_kernel(const float* x, const int64_t* rows, int64_t count, int64_t cols, float* out) {
  const int64_t n = count * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = x[rows[r] * cols + c];
  }
}

// Enough blocks to fill the GPU, few enough that each thread loops a while.
unsigned grid_for(int64_t n) { return std::min<unsigned>(blocks_for(n, kThreads), 132u * 16u); }

}  // namespace

void embed(const void* table, DType dtype, int64_t cols, const int32_t* ids, int64_t rows, float* out,
           cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    embed_kernel<T><<<grid_for(rows * cols), kThreads, 0, stream>>>(static_cast<const T*>(table), cols, ids, rows, out);
  });
  check_launch("embed");
}

void add_rows(const void* table, DType dtype, int64_t cols, const int32_t* positions, int64_t rows, float* x,
              cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    add_rows_kernel<T>
        <<<grid_for(rows * cols), kThreads, 0, stream>>>(static_cast<const T*>(table), cols, positions, rows, x);
  });
  check_launch("add_rows");
}

void convert_from_f32(const float* x, int64_t n, DType dtype, void* out, cudaStream_t stream) {
  dispatch_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    convert_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(x, n, static_cast<T*>(out));
  });
  check_launch("convert_from_f32");
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  add_bias_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(x, bias, rows, cols);
  check_launch("add_bias");
}

void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out,
                      cudaStream_t stream) {
  if (rows <= 0) return;
  const int64_t per_row = inner % 4 == 0 ? inner / 4 : inner;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((per_row + kThreads - 1) / kThreads, 1024)),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  gated_activation_kernel<<<grid, kThreads, 0, stream>>>(act, gate_up, rows, inner, out);
  check_launch("gated_activation");
}

void activation(Activation act, float* x, int64_t n, cudaStream_t stream) {
  activation_kernel<<<grid_for(n), kThreads, 0, stream>>>(act, x, n);
  check_launch("activation");
}

void add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  check_launch("add");
}

void fill(float* x, float value, int64_t n, cudaStream_t stream) {
  fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, value, n);
  check_launch("fill");
}

void scale_add_rows(const float* src, const int64_t* rows, const float* weights, int64_t count, int64_t cols,
                    float* out, cudaStream_t stream) {
  scale_add_rows_kernel<<<grid_for(count * cols), kThreads, 0, stream>>>(src, rows, weights, count, cols, out);
  check_launch("scale_add_rows");
}

void gather_rows(const float* x, const int64_t* rows, int64_t count, int64_t cols, float* out, cudaStream_t stream) {
  gather_rows_kernel<<<grid_for(count * cols), kThreads, 0, stream>>>(x, rows, count, cols, out);
  check_launch("gather_rows");
}

}  // namespace kiln::runtime::cuda
