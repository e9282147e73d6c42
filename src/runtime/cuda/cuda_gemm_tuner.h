// Build-time GEMM tuning on the build GPU: for every (problem, m bucket) of a
// GemmPlan, the candidates cuBLASLt's heuristic proposes for the descriptors
// the runtime uses (cuda_gemm.h) are each rebuilt from their attributes (as
// the runtime will rebuild them), timed, and the fastest is kept.
#pragma once

#include <stop_token>

#include "runtime/gemm_plan.h"

namespace kiln::runtime::cuda {

struct GemmTuneOptions {
  int candidates = 16;  // heuristic answers asked for per shape
  int warmup = 3;       // untimed runs per candidate
  int reps = 15;        // timed runs per candidate (the median counts), each after an L2 flush
};

// Tunes `plan` on device 0 and returns it with its choices, tuned = true and
// where it was measured. Progress and a summary go to stderr. Throws
// kiln::Error on a CUDA failure, or when `stop` is requested.
GemmPlan tune_gemm_plan(GemmPlan plan, std::stop_token stop = {}, const GemmTuneOptions& options = {});

}  // namespace kiln::runtime::cuda
