// The CUDA backend's products with 16-bit weights above the gemv's rows:
// cublasLtMatmul with the algorithm the engine's build measured fastest for
// the weight's (n, k) and the step's m bucket (runtime/gemm_plan.h), rebuilt
// from its stored attributes and checked once per shape; cuBLASLt's heuristic
// where the engine has no choice or its choice does not run here.
//
// After the first call for a shape, a call only enqueues the product: the
// descriptors and the algorithm are cached per (n, k, m, dtype) and the
// workspace is allocated once, so products may be captured in CUDA graphs.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "runtime/gemm_plan.h"

namespace kiln::runtime::cuda {

// The device workspace every product may use; the tuner offers candidates the same.
inline constexpr std::size_t kGemmWorkspaceBytes = std::size_t{32} << 20;

// cublasLtGetVersion(), e.g. 130000 for 13.0.0.
int64_t cublaslt_version();

// The cuBLASLt descriptors of one product as the runtime runs it: row-major
// out[m, n] (fp32) = x[m, k] * W[n, k]^T, with x and W in `dtype` (fp16,
// bf16 or f8e4m3), fp32 accumulation and scale. In cuBLASLt's column-major
// terms: D[n, m] = op(A)^T B with A = W stored [k, n], B = x stored [k, m],
// C = D = out. E4M3 operands are scaled by vectors (outer-vector scaling):
// out[i][j] = w_scale[j] x x_scale[i] x sum_k x[i][k] W[j][k], w_scale the
// weight's per-output-feature scales, x_scale the per-row scales x was
// quantized with; or, where this cuBLASLt refuses vector scales (13.0 on
// sm_90), unscaled: out = sum_k x[i][k] W[j][k], and apply_e4m3_scales
// applies the scales after (Fp8Scaling::after).
enum class Fp8Scaling { vectors, after };

// How products with `dtype` operands are scaled here: for E4M3, whether
// cuBLASLt on this device takes outer-vector scales, asked once per process
// (a small product's heuristic) and cached; `vectors` (unused) for the rest.
Fp8Scaling fp8_scaling(cublasLtHandle_t lt, DType dtype);

class GemmDescriptors {
 public:
  GemmDescriptors(int64_t n, int64_t k, int64_t m, DType dtype, Fp8Scaling scaling = Fp8Scaling::vectors);
  ~GemmDescriptors();
  GemmDescriptors(const GemmDescriptors&) = delete;
  GemmDescriptors& operator=(const GemmDescriptors&) = delete;

  // cuBLASLt's heuristic's first `count` answers (best first) that run with
  // kGemmWorkspaceBytes of workspace.
  std::vector<cublasLtMatmulHeuristicResult_t> heuristic(cublasLtHandle_t lt, int count) const;
  // cublasLtMatmulAlgoCheck for this shape; on success *workspace is what the algorithm needs.
  cublasStatus_t validate(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo, std::size_t* workspace) const;
  // Enqueues out = x * W^T (beta 0), or out += x * W^T with `accumulate` (beta 1).
  // E4M3 operands with Fp8Scaling::vectors take their scales (device
  // pointers); others ignore them.
  cublasStatus_t run(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w, float* out,
                     bool accumulate, void* workspace, cudaStream_t stream, const float* x_scale = nullptr,
                     const float* w_scale = nullptr) const;

 private:
  bool scaled_ = false;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
};

// An algorithm's documented configuration attributes (nullopt when cuBLASLt
// does not answer them all), and an algorithm rebuilt from them
// (cublasLtMatmulAlgoInit, then each attribute set) for products with
// `dtype` operands as GemmDescriptors describes them.
std::optional<GemmAlgo> algo_attributes(const cublasLtMatmulAlgo_t& algo);
cublasStatus_t algo_from_attributes(cublasLtHandle_t lt, DType dtype, const GemmAlgo& attributes,
                                    cublasLtMatmulAlgo_t* algo);

class CudaGemm {
 public:
  // Products run on `stream`; `plan` holds the engine's choices (may be untuned).
  CudaGemm(cudaStream_t stream, GemmPlan plan);
  ~CudaGemm();
  CudaGemm(const CudaGemm&) = delete;
  CudaGemm& operator=(const CudaGemm&) = delete;

  // Row-major out[m, n] = x[m, k] * w[n, k]^T (+ out with `accumulate`): x and
  // w in `dtype` (fp16, bf16, or f8e4m3 with x_scale[m] and w_scale[n] as
  // GemmDescriptors says), out fp32, all device pointers aligned as
  // cudaMalloc's (256 bytes).
  // False, having run nothing, when cuBLASLt has no algorithm for the shape or
  // an operand is not 256-byte aligned: the caller runs another product.
  // An E4M3 product scaled after (Fp8Scaling::after) with `accumulate`
  // writes its unscaled product to `scratch` (m x n floats, 256-byte aligned)
  // before adding it to out.
  bool run(const void* x, const void* w, DType dtype, int64_t m, int64_t n, int64_t k, float* out, bool accumulate,
           const float* x_scale = nullptr, const float* w_scale = nullptr, float* scratch = nullptr);
  // An E4M3 product left unscaled (out = sum_k x W, beta 0) where this
  // cuBLASLt scales after (Fp8Scaling::after), for a consumer that applies
  // the scales as it reads out; false, having run nothing, where it scales
  // inside the product (run does all then) or run would refuse the shape.
  bool run_unscaled(const void* x, const void* w, DType dtype, int64_t m, int64_t n, int64_t k, float* out);
  // Whether run takes the shape with these operands (w and out aligned, an
  // algorithm for it), its x being any cudaMalloc-aligned buffer.
  bool can_run(const void* w, DType dtype, int64_t m, int64_t n, int64_t k, const float* out);
  // The alignment every operand of run needs (cudaMalloc's 256 bytes).
  static bool aligned(const void* p);

 private:
  struct Key {
    int64_t n, k, m;
    DType dtype;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const;
  };
  struct Prepared {
    std::unique_ptr<GemmDescriptors> descriptors;
    cublasLtMatmulAlgo_t algo{};
    bool usable = true;  // false: no cuBLASLt algorithm (GemmEx runs it)
  };
  const Prepared& prepare(const Key& key);
  // The prepared product where the operands are aligned and cuBLASLt has an algorithm; null otherwise.
  const Prepared* runnable(const void* x, const void* w, const float* out, const Key& key);

  cudaStream_t stream_;
  GemmPlan plan_;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  std::unordered_map<Key, Prepared, KeyHash> prepared_;
  // Fallbacks already logged: (n, k, bucket), bucket 0 for shapes without a choice.
  std::set<std::tuple<int64_t, int64_t, int64_t>> noted_;
};

}  // namespace kiln::runtime::cuda
