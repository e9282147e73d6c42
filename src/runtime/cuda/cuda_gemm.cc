#include "runtime/cuda/cuda_gemm.h"

#include <functional>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_kernels.h"

namespace kiln::runtime::cuda {
namespace {

static_assert(kGemvMaxRows < GemmPlan::kSmallestBucket, "the smallest GEMM bucket must lie above the gemv's rows");

cudaDataType_t operand_type(DType d) {
  switch (d) {
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f8e4m3: return CUDA_R_8F_E4M3;
    default: throw_error("internal: cuBLASLt GEMMs take fp16, bf16 or E4M3 operands, not ", dtype_name(d));
  }
}

template <typename T>
cublasStatus_t get(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attribute, T* value) {
  std::size_t written = 0;
  return cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, value, sizeof(T), &written);
}

template <typename T>
cublasStatus_t set(cublasLtMatmulAlgo_t* algo, cublasLtMatmulAlgoConfigAttributes_t attribute, T value) {
  return cublasLtMatmulAlgoConfigSetAttribute(algo, attribute, &value, sizeof(T));
}

std::string describe(const GemmAlgo& a) {
  return concat("algo ", a.id, " tile ", a.tile_id, " stages ", a.stages_id, " splitk ", a.splitk_num);
}

}  // namespace

int64_t cublaslt_version() { return static_cast<int64_t>(cublasLtGetVersion()); }

Fp8Scaling fp8_scaling(cublasLtHandle_t lt, DType dtype) {
  if (dtype != DType::f8e4m3) return Fp8Scaling::vectors;
  // Every handle of the process is on the same device and library.
  static const Fp8Scaling answer = [lt] {
    try {
      if (!GemmDescriptors(256, 256, 256, DType::f8e4m3, Fp8Scaling::vectors).heuristic(lt, 1).empty()) {
        return Fp8Scaling::vectors;
      }
    } catch (const Error&) {
      // INVALID_VALUE: the scale modes are not taken here.
    }
    log_info("FP8 GEMMs: this cuBLASLt takes no outer-vector scales here; the scales are applied after each product");
    return Fp8Scaling::after;
  }();
  return answer;
}

GemmDescriptors::GemmDescriptors(int64_t n, int64_t k, int64_t m, DType dtype, Fp8Scaling scaling) {
  const cudaDataType_t t = operand_type(dtype);
  check(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa),
        "cublasLtMatmulDescSetAttribute");
  check(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb),
        "cublasLtMatmulDescSetAttribute");
  if (dtype == DType::f8e4m3 && scaling == Fp8Scaling::vectors) {
    // One fp32 scale per row of D's column-major A (a weight row) and per
    // column of B (an activation row); the algorithm is chosen with the modes set.
    scaled_ = true;
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    check(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode),
          "cublasLtMatmulDescSetAttribute (A scale mode)");
    check(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode),
          "cublasLtMatmulDescSetAttribute (B scale mode)");
  }
  const auto un = static_cast<uint64_t>(n), uk = static_cast<uint64_t>(k), um = static_cast<uint64_t>(m);
  check(cublasLtMatrixLayoutCreate(&a_, t, uk, un, k), "cublasLtMatrixLayoutCreate");
  check(cublasLtMatrixLayoutCreate(&b_, t, uk, um, k), "cublasLtMatrixLayoutCreate");
  check(cublasLtMatrixLayoutCreate(&c_, CUDA_R_32F, un, um, n), "cublasLtMatrixLayoutCreate");
}

GemmDescriptors::~GemmDescriptors() {
  if (c_) cublasLtMatrixLayoutDestroy(c_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (op_) cublasLtMatmulDescDestroy(op_);
}

std::vector<cublasLtMatmulHeuristicResult_t> GemmDescriptors::heuristic(cublasLtHandle_t lt, int count) const {
  cublasLtMatmulPreference_t preference = nullptr;
  check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace = kGemmWorkspaceBytes;
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                               &workspace, sizeof workspace);
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(count));
  int returned = 0;
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = cublasLtMatmulAlgoGetHeuristic(lt, op_, a_, b_, c_, c_, preference, count, results.data(), &returned);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  // NOT_SUPPORTED: no algorithm for this shape, an empty answer.
  if (status != CUBLAS_STATUS_NOT_SUPPORTED) check(status, "cublasLtMatmulAlgoGetHeuristic");
  results.resize(static_cast<std::size_t>(status == CUBLAS_STATUS_SUCCESS ? returned : 0));
  std::erase_if(results, [](const cublasLtMatmulHeuristicResult_t& r) {
    return r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > kGemmWorkspaceBytes;
  });
  return results;
}

cublasStatus_t GemmDescriptors::validate(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo,
                                         std::size_t* workspace) const {
  cublasLtMatmulHeuristicResult_t result{};
  const cublasStatus_t status = cublasLtMatmulAlgoCheck(lt, op_, a_, b_, c_, c_, &algo, &result);
  if (status == CUBLAS_STATUS_SUCCESS) *workspace = result.workspaceSize;
  return status;
}

cublasStatus_t GemmDescriptors::run(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo, const void* x, const void* w,
                                    float* out, bool accumulate, void* workspace, cudaStream_t stream,
                                    const float* x_scale, const float* w_scale) const {
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  if (scaled_) {
    // The pointers are read when the product is enqueued (and recorded with it in a graph).
    cublasStatus_t s =
        cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale);
    if (s == CUBLAS_STATUS_SUCCESS) {
      s = cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale);
    }
    if (s != CUBLAS_STATUS_SUCCESS) return s;
  }
  return cublasLtMatmul(lt, op_, &alpha, w, a_, x, b_, &beta, out, c_, out, c_, &algo, workspace, kGemmWorkspaceBytes,
                        stream);
}

std::optional<GemmAlgo> algo_attributes(const cublasLtMatmulAlgo_t& algo) {
  GemmAlgo a;
  const cublasStatus_t statuses[] = {
      get(algo, CUBLASLT_ALGO_CONFIG_ID, &a.id),
      get(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &a.tile_id),
      get(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &a.stages_id),
      get(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &a.splitk_num),
      get(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &a.reduction_scheme),
      get(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &a.cta_swizzling),
      get(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &a.custom_option),
      get(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &a.inner_shape_id),
      get(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &a.cluster_shape_id),
  };
  for (const cublasStatus_t s : statuses) {
    if (s != CUBLAS_STATUS_SUCCESS) return std::nullopt;
  }
  return a;
}

cublasStatus_t algo_from_attributes(cublasLtHandle_t lt, DType dtype, const GemmAlgo& a, cublasLtMatmulAlgo_t* algo) {
  const cudaDataType_t t = operand_type(dtype);
  // Matches GemmDescriptors: compute and scale fp32, C and D fp32.
  cublasStatus_t s =
      cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, t, t, CUDA_R_32F, CUDA_R_32F, a.id, algo);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, a.tile_id);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, a.stages_id);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, a.splitk_num);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, a.reduction_scheme);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, a.cta_swizzling);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, a.custom_option);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, a.inner_shape_id);
  if (s == CUBLAS_STATUS_SUCCESS) s = set(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, a.cluster_shape_id);
  return s;
}

std::size_t CudaGemm::KeyHash::operator()(const Key& key) const {
  std::size_t h = std::hash<int64_t>()(key.n);
  h = h * 1000003u ^ std::hash<int64_t>()(key.k);
  h = h * 1000003u ^ std::hash<int64_t>()(key.m);
  return h * 1000003u ^ static_cast<std::size_t>(key.dtype);
}

CudaGemm::CudaGemm(cudaStream_t stream, GemmPlan plan) : stream_(stream), plan_(std::move(plan)) {
  check(cublasLtCreate(&lt_), "cublasLtCreate");
  const cudaError_t status = cudaMalloc(&workspace_, kGemmWorkspaceBytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    cublasLtDestroy(lt_);
    throw_error("CUDA out of memory: the GEMM workspace needs ", kGemmWorkspaceBytes >> 20, " MiB (",
                cudaGetErrorString(status), ")");
  }
  if (!plan_.tuned) {
    // Engines without 16-bit GEMMs (fp32) or from before tuning say nothing.
    if (!plan_.problems.empty()) log_info("GEMMs: cuBLASLt's heuristic chooses each algorithm (", plan_.reason, ")");
  } else {
    log_info("GEMMs: ", plan_.tuned_choices(), " algorithms measured on ", plan_.device, " (", plan_.arch,
             ", cuBLASLt ", plan_.cublaslt_version, ")");
    if (plan_.cublaslt_version != cublaslt_version()) {
      log_warn("this cuBLASLt is version ", cublaslt_version(), ", the engine's GEMM choices were measured with ",
               plan_.cublaslt_version, ": each is used where cuBLASLt accepts it; rebuild the engine to measure again");
    }
  }
}

CudaGemm::~CudaGemm() {
  prepared_.clear();
  if (workspace_) cudaFree(workspace_);
  if (lt_) cublasLtDestroy(lt_);
}

const CudaGemm::Prepared& CudaGemm::prepare(const Key& key) {
  if (auto it = prepared_.find(key); it != prepared_.end()) return it->second;
  Prepared p;
  p.descriptors = std::make_unique<GemmDescriptors>(key.n, key.k, key.m, key.dtype, fp8_scaling(lt_, key.dtype));
  bool chosen = false;
  if (const GemmChoice* choice = plan_.lookup(key.n, key.k, key.m, key.dtype)) {
    std::size_t workspace = 0;
    cublasStatus_t status = algo_from_attributes(lt_, key.dtype, choice->algo, &p.algo);
    if (status == CUBLAS_STATUS_SUCCESS) status = p.descriptors->validate(lt_, p.algo, &workspace);
    chosen = status == CUBLAS_STATUS_SUCCESS && workspace <= kGemmWorkspaceBytes;
    if (!chosen && noted_.insert({key.n, key.k, choice->m}).second) {
      log_warn("GEMM n=", key.n, " k=", key.k, " m=", key.m, ": the engine's choice for m <= ", choice->m, " (",
               describe(choice->algo), ") does not run here (",
               status == CUBLAS_STATUS_SUCCESS ? concat("needs ", workspace, " bytes of workspace")
                                               : std::string(cublasLtGetStatusName(status)),
               "); using cuBLASLt's heuristic");
    }
  } else if (plan_.tuned && noted_.insert({key.n, key.k, 0}).second) {
    log_info("GEMM n=", key.n, " k=", key.k, " m=", key.m,
             ": the engine has no measured choice for it; using cuBLASLt's heuristic");
  }
  if (!chosen) {
    const auto results = p.descriptors->heuristic(lt_, 1);
    if (results.empty()) {
      // Odd shapes (tiny test models) may have none: the caller's cublasGemmEx runs them.
      log_info("GEMM n=", key.n, " k=", key.k, " m=", key.m, ": cuBLASLt has no algorithm for it; using cublasGemmEx");
      p.usable = false;
    } else {
      p.algo = results.front().algo;
    }
  }
  return prepared_.emplace(key, std::move(p)).first->second;
}

bool CudaGemm::aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 256 == 0; }

const CudaGemm::Prepared* CudaGemm::runnable(const void* x, const void* w, const float* out, const Key& key) {
  // The tuned algorithms assume cudaMalloc's alignment.
  if (!aligned(x) || !aligned(w) || !aligned(out)) return nullptr;
  const Prepared& p = prepare(key);
  return p.usable ? &p : nullptr;
}

bool CudaGemm::can_run(const void* w, DType dtype, int64_t m, int64_t n, int64_t k, const float* out) {
  return runnable(w, w, out, Key{n, k, m, dtype}) != nullptr;  // x: any cudaMalloc-aligned buffer
}

bool CudaGemm::run(const void* x, const void* w, DType dtype, int64_t m, int64_t n, int64_t k, float* out,
                   bool accumulate, const float* x_scale, const float* w_scale, float* scratch) {
  const bool after = fp8_scaling(lt_, dtype) == Fp8Scaling::after;
  if (after && accumulate && (scratch == nullptr || !aligned(scratch))) return false;
  const Prepared* p = runnable(x, w, out, Key{n, k, m, dtype});
  if (!p) return false;
  if (!after) {
    check(p->descriptors->run(lt_, p->algo, x, w, out, accumulate, workspace_, stream_, x_scale, w_scale),
          "cublasLtMatmul");
    return true;
  }
  // The unscaled product, then both scale vectors (and the sum) in one pass.
  float* raw = accumulate ? scratch : out;
  check(p->descriptors->run(lt_, p->algo, x, w, raw, false, workspace_, stream_), "cublasLtMatmul");
  apply_e4m3_scales(raw, x_scale, w_scale, m, n, out, accumulate, stream_);
  return true;
}

bool CudaGemm::run_unscaled(const void* x, const void* w, DType dtype, int64_t m, int64_t n, int64_t k, float* out) {
  if (dtype != DType::f8e4m3 || fp8_scaling(lt_, dtype) != Fp8Scaling::after) return false;
  const Prepared* p = runnable(x, w, out, Key{n, k, m, dtype});
  if (!p) return false;
  check(p->descriptors->run(lt_, p->algo, x, w, out, false, workspace_, stream_), "cublasLtMatmul");
  return true;
}

}  // namespace kiln::runtime::cuda
