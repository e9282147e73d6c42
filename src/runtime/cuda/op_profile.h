// Optional per-op GPU timing for the CUDA backend (KILN_CUDA_PROFILE=1): each
// op is bracketed by CUDA events on the stream (no extra synchronisation), the
// times are collected at the next sync point, and a table of time per op kind
// goes to stderr when the backend is destroyed. The issue's "largest remaining
// gap, measured" comes from here. KILN_CUDA_PROFILE=rows keys each op by the
// step's row count too ("gemm_fp8 @512"), separating decode steps of a batch
// from prompt chunks.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::runtime::cuda {

class OpProfile {
 public:
  OpProfile();
  ~OpProfile();
  bool enabled() const { return enabled_; }
  // The rows of the step the next ops belong to (used with KILN_CUDA_PROFILE=rows).
  void set_step_rows(int64_t rows) { step_rows_ = rows; }

  class Scope {
   public:
    Scope(OpProfile* profile, const char* name, cudaStream_t stream);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpProfile* profile_;
    cudaStream_t stream_;
  };
  Scope scope(const char* name, cudaStream_t stream) { return Scope(enabled_ ? this : nullptr, name, stream); }

  // After a stream sync: folds the finished events into the totals.
  void collect();

 private:
  struct Pending {
    std::string name;
    cudaEvent_t start, end;
  };
  cudaEvent_t event();
  bool enabled_ = false, by_rows_ = false;
  int64_t step_rows_ = 0;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_;
  std::map<std::string, std::pair<double, long>> totals_;  // name -> (ms, count)
};

}  // namespace kiln::runtime::cuda
