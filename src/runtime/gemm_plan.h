// The GEMMs an engine runs, and the cuBLASLt algorithm measured fastest for
// each on the build GPU (engine.json's kernel_choices.gemm). Plain C++: the
// CUDA tuner (cuda/cuda_gemm_tuner.h) fills the choices at build time, the
// CUDA GEMM (cuda/cuda_gemm.h) reads them at run time, and CPU-only builds,
// tests and `kiln inspect` can read and write the plan without the toolkit.
//
// Every product is out[m, n] = x[m, k] * W[n, k]^T with W (and x, converted)
// in the engine's dtype and out in fp32; m is the number of rows of the step.
// Up to 8 rows run the gemv kernel and are not tuned; above that, each (n, k)
// is tuned at m buckets (16, 32, 64, ... and the largest m it runs with), and
// a product of m rows uses the choice of the smallest bucket >= m.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/model_spec.h"
#include "engine/manifest.h"

namespace kiln::runtime {

// engine.json's kernel_choices[kGemmChoicesKey] holds GemmPlan::to_json().
inline constexpr const char* kGemmChoicesKey = "gemm";

// A cuBLASLt algorithm by its documented configuration attributes
// (cublasLtMatmulAlgoConfigAttributes_t: CUBLASLT_ALGO_CONFIG_<NAME> is stored
// as the JSON key <name> in lower case), from which cublasLtMatmulAlgoInit and
// cublasLtMatmulAlgoConfigSetAttribute rebuild it. Types as the header's.
struct GemmAlgo {
  int32_t id = 0;                 // CUBLASLT_ALGO_CONFIG_ID
  uint32_t tile_id = 0;           // cublasLtMatmulTile_t
  uint32_t stages_id = 0;         // cublasLtMatmulStages_t
  int32_t splitk_num = 1;         // number of K splits
  uint32_t reduction_scheme = 0;  // cublasLtReductionScheme_t
  uint32_t cta_swizzling = 0;
  uint32_t custom_option = 0;
  uint16_t inner_shape_id = 0;    // cublasLtMatmulInnerShape_t
  uint16_t cluster_shape_id = 0;  // cublasLtClusterShape_t
  bool operator==(const GemmAlgo&) const = default;
};

// The measured choice for one m bucket of a problem.
struct GemmChoice {
  int64_t m = 0;  // the bucket: tuned with m rows, used for products of up to m rows
  GemmAlgo algo;
  GemmAlgo default_algo;  // cuBLASLt's heuristic's first answer for the same shape
  double us = 0;          // median time of `algo`, microseconds
  double default_us = 0;  // median time of `default_algo`
  int candidates = 0;     // algorithms timed
  double speedup() const { return us > 0 ? default_us / us : 1.0; }
};

// One distinct weight shape of a rank (every rank's shapes are the same).
struct GemmProblem {
  std::vector<std::string> uses;    // "qkv", "out", "gate_up", "up", "down", "expert_gate_up", "expert_down", "lm_head"
  int64_t n = 0;                    // output features (weight rows)
  int64_t k = 0;                    // input features (weight columns)
  int64_t max_m = 0;                // the most rows it runs with
  bool accumulate = false;          // beta = 1 (adds into the residual) in at least one use
  std::vector<GemmChoice> choices;  // ascending m; empty when not tuned
  // The operands' dtype: the engine's, or f8e4m3 for an FP8 engine's
  // projections (x quantized per row, both operands scaled by vectors).
  DType dtype = DType::f16;
};

class GemmPlan {
 public:
  static constexpr int kFormatVersion = 1;
  static constexpr int64_t kSmallestBucket = 16;  // fewer rows: 9..16 use it; up to 8 run the gemv

  // The GEMMs of an engine with this spec, tensor-parallel degree, limits and
  // weight dtype, untuned: per rank the distinct (n, k) of qkv, out, gate_up
  // (or up), down (or the experts'), and lm_head, which runs only the logit
  // rows (up to max_batch_size). Products of up to 8 rows are left out, and
  // fp32 engines have none (their products are cublasSgemm, exact fp32).
  // With Quantization::fp8 the projections are E4M3 products; the LM head
  // keeps the engine's dtype.
  static GemmPlan for_engine(const ModelSpec& spec, int tensor_parallel, const engine::Limits& limits, DType dtype,
                             engine::Quantization quantization = engine::Quantization::none);
  static GemmPlan for_manifest(const engine::Manifest& manifest);

  // The m buckets for products of up to max_m rows: 16, 32, 64, ... below
  // max_m, then max_m itself; none when max_m is at most 8.
  static std::vector<int64_t> buckets(int64_t max_m);

  nlohmann::json to_json() const;
  // Throws kiln::Error naming what is malformed.
  static GemmPlan from_json(const nlohmann::json& json);
  // The plan stored in an engine's kernel_choices; an empty (untuned) plan
  // when it has none (CPU engines, engines from before tuning).
  static GemmPlan from_kernel_choices(const nlohmann::json& kernel_choices);

  // The choice for a product of m rows with an [n, k] weight of `dtype`: the
  // smallest tuned bucket >= m; null when there is none (not tuned, another
  // shape or dtype, more rows than were tuned).
  const GemmChoice* lookup(int64_t n, int64_t k, int64_t m, DType dtype) const;
  // The problem of an [n, k] weight of `dtype` (the plan's dtype when
  // nullopt); null when there is none.
  const GemmProblem* find(int64_t n, int64_t k, std::optional<DType> dtype = std::nullopt) const;

  // Totals over every choice: how many, and the mean of default_us / us.
  int tuned_choices() const;
  double mean_speedup() const;

  DType dtype = DType::f16;  // the engine's dtype
  std::vector<GemmProblem> problems;
  bool tuned = false;
  std::string reason;  // why not, when not tuned
  // Where and with what it was tuned.
  std::string arch;    // "sm_90"
  std::string device;  // "NVIDIA H100 80GB HBM3"
  int64_t cublaslt_version = 0;
  int64_t workspace_bytes = 0;
  double seconds = 0;  // tuning time
};

}  // namespace kiln::runtime
