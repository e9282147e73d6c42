#include "runtime/cuda/cuda_gemm_tuner.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_gemm.h"

namespace kiln::runtime::cuda {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// `value` with `digits` decimals, for progress lines.
std::string fixed(double value, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

struct FreeDevice {
  void operator()(void* p) const { cudaFree(p); }
};
using DeviceMemory = std::unique_ptr<void, FreeDevice>;

DeviceMemory device_alloc(std::size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, std::max<std::size_t>(bytes, 256));
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw_error("CUDA out of memory while tuning GEMMs: ", what, " needs ", (bytes + (1 << 20) - 1) >> 20, " MiB (",
                cudaGetErrorString(status), "); build with --tune off to skip tuning");
  }
  return DeviceMemory(p);
}

// What the tuning of one shape runs with: the device, the library, and the
// operands (their contents do not matter; they are filled once).
class Bench {
 public:
  Bench(const GemmTuneOptions& options, std::size_t flush_bytes) : options_(options), flush_bytes_(flush_bytes) {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cublasLtCreate(&lt_), "cublasLtCreate");
    workspace_ = device_alloc(kGemmWorkspaceBytes, "the GEMM workspace");
    flush_ = device_alloc(flush_bytes_, "the L2 flush buffer");
    events_.resize(2 * static_cast<std::size_t>(options_.reps));
    for (cudaEvent_t& e : events_) check(cudaEventCreate(&e), "cudaEventCreate");
  }
  ~Bench() {
    if (stream_) cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : events_) {
      if (e) cudaEventDestroy(e);
    }
    if (lt_) cublasLtDestroy(lt_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  cublasLtHandle_t lt() const { return lt_; }

  // Operands for products of up to max_m rows with an [n, k] weight.
  void operands(int64_t n, int64_t k, int64_t max_m, DType dtype) {
    const std::size_t size = dtype_size(dtype);
    w_.reset();  // the previous problem's first: fewer bytes held at once
    x_.reset();
    out_.reset();
    scales_.reset();
    const auto w_bytes = static_cast<std::size_t>(n * k) * size, x_bytes = static_cast<std::size_t>(max_m * k) * size;
    const auto out_bytes = static_cast<std::size_t>(max_m * n) * sizeof(float);
    w_ = device_alloc(w_bytes, "a weight");
    x_ = device_alloc(x_bytes, "an activation");
    out_ = device_alloc(out_bytes, "an output");
    // E4M3 products read a scale per weight row and per activation row.
    const auto scale_bytes = static_cast<std::size_t>(std::max(n, max_m)) * sizeof(float);
    scales_ = device_alloc(scale_bytes, "the operands' scales");
    check(cudaMemsetAsync(scales_.get(), 0x3C, scale_bytes, stream_), "cudaMemsetAsync");
    // 0x3C3C: 1.06 in fp16, 0.0115 in bf16, 0x3C 1.5 in E4M3, 0x3C3C3C3C 0.0115 as an fp32 scale;
    // finite, so no algorithm meets NaNs or infinities.
    check(cudaMemsetAsync(w_.get(), 0x3C, w_bytes, stream_), "cudaMemsetAsync");
    check(cudaMemsetAsync(x_.get(), 0x3C, x_bytes, stream_), "cudaMemsetAsync");
    check(cudaMemsetAsync(out_.get(), 0, out_bytes, stream_), "cudaMemsetAsync");
  }

  // The median time of `algo` in microseconds, each run after the L2 cache
  // is flushed (in the model, a layer's weights are not in L2 when its
  // product starts); nullopt when cuBLASLt refuses to run it.
  std::optional<double> time(const GemmDescriptors& d, const cublasLtMatmulAlgo_t& algo, bool accumulate) {
    auto run = [&] {
      const auto* scales = static_cast<const float*>(scales_.get());
      return d.run(lt_, algo, x_.get(), w_.get(), static_cast<float*>(out_.get()), accumulate, workspace_.get(),
                   stream_, scales, scales);
    };
    for (int i = 0; i < options_.warmup; ++i) {
      if (run() != CUBLAS_STATUS_SUCCESS) return std::nullopt;
    }
    // The flush keeps the GPU busy while the host queues the timed run, so
    // the events bracket the product alone.
    for (int r = 0; r < options_.reps; ++r) {
      check(cudaMemsetAsync(flush_.get(), r & 0xff, flush_bytes_, stream_), "cudaMemsetAsync (L2 flush)");
      check(cudaEventRecord(events_[2 * static_cast<std::size_t>(r)], stream_), "cudaEventRecord");
      if (run() != CUBLAS_STATUS_SUCCESS) return std::nullopt;
      check(cudaEventRecord(events_[2 * static_cast<std::size_t>(r) + 1], stream_), "cudaEventRecord");
    }
    check(cudaStreamSynchronize(stream_), "a GEMM being tuned");
    std::vector<double> us;
    for (int r = 0; r < options_.reps; ++r) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, events_[2 * static_cast<std::size_t>(r)],
                                 events_[2 * static_cast<std::size_t>(r) + 1]),
            "cudaEventElapsedTime");
      us.push_back(static_cast<double>(ms) * 1000.0);
    }
    std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(us.size() / 2), us.end());
    return us[us.size() / 2];
  }

 private:
  GemmTuneOptions options_;
  std::size_t flush_bytes_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  DeviceMemory workspace_, flush_, w_, x_, out_, scales_;
  std::vector<cudaEvent_t> events_;
};

struct Candidate {
  GemmAlgo attributes;
  cublasLtMatmulAlgo_t algo;
};

struct Tally {
  int refused = 0;   // candidates cuBLASLt did not accept once rebuilt from their attributes
  int differed = 0;  // candidates whose rebuilt algorithm is not bytewise the heuristic's
  int proposed = 0;
};

// The choice for one (problem, m), or nullopt when nothing could be timed.
std::optional<GemmChoice> tune_shape(Bench& bench, const GemmProblem& p, int64_t m, DType dtype,
                                     const GemmTuneOptions& options, Tally& tally) {
  // E4M3 products timed as the runtime runs them (the scales applied after,
  // where they are, cost the same whichever algorithm runs).
  const Fp8Scaling scaling = fp8_scaling(bench.lt(), dtype);
  const GemmDescriptors d(p.n, p.k, m, dtype, scaling);
  // Scaled after, an E4M3 product never accumulates itself (the scaling pass adds).
  const bool accumulate = p.accumulate && scaling != Fp8Scaling::after;
  std::vector<cublasLtMatmulHeuristicResult_t> proposed;
  try {
    proposed = d.heuristic(bench.lt(), options.candidates);
  } catch (const Error& e) {
    log_warn("GEMM n=", p.n, " k=", p.k, " m=", m, ": ", e.what());
  }
  if (proposed.empty()) return std::nullopt;
  // Each candidate as the runtime will run it: rebuilt from its attributes.
  std::vector<Candidate> candidates;
  for (const auto& r : proposed) {
    ++tally.proposed;
    const std::optional<GemmAlgo> attributes = algo_attributes(r.algo);
    if (!attributes) {
      ++tally.refused;
      continue;
    }
    Candidate c{*attributes, {}};
    const bool seen = std::any_of(candidates.begin(), candidates.end(),
                                  [&](const Candidate& o) { return o.attributes == c.attributes; });
    if (seen) continue;
    std::size_t workspace = 0;
    cublasStatus_t status = algo_from_attributes(bench.lt(), dtype, c.attributes, &c.algo);
    if (status == CUBLAS_STATUS_SUCCESS) status = d.validate(bench.lt(), c.algo, &workspace);
    if (status != CUBLAS_STATUS_SUCCESS || workspace > kGemmWorkspaceBytes) {
      ++tally.refused;
      continue;
    }
    if (std::memcmp(&c.algo, &r.algo, sizeof c.algo) != 0) ++tally.differed;
    candidates.push_back(c);
  }
  GemmChoice choice;
  choice.m = m;
  choice.default_algo = algo_attributes(proposed.front().algo).value_or(GemmAlgo{});
  // The baseline is what an untuned engine runs: the heuristic's first answer as it gave it.
  const std::optional<double> baseline = bench.time(d, proposed.front().algo, accumulate);
  std::optional<double> best;
  for (const Candidate& c : candidates) {
    const std::optional<double> us = bench.time(d, c.algo, accumulate);
    if (!us) continue;
    ++choice.candidates;
    if (!best || *us < *best) {
      best = us;
      choice.algo = c.attributes;
    }
  }
  if (!best) return std::nullopt;
  choice.us = *best;
  choice.default_us = baseline.value_or(*best);
  log_debug("    m=", m, ": ", choice.candidates, " candidates, best ", choice.us, " us (algo ", choice.algo.id,
            " tile ", choice.algo.tile_id, " splitk ", choice.algo.splitk_num, "), heuristic ", choice.default_us,
            " us");
  return choice;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "+") + p;
  return s;
}

}  // namespace

GemmPlan tune_gemm_plan(GemmPlan plan, std::stop_token stop, const GemmTuneOptions& options) {
  const auto start = Clock::now();
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  plan.tuned = true;
  plan.reason.clear();
  plan.arch = concat("sm_", prop.major, prop.minor);
  plan.device = prop.name;
  plan.cublaslt_version = cublaslt_version();
  plan.workspace_bytes = static_cast<int64_t>(kGemmWorkspaceBytes);
  int shapes = 0;
  for (const GemmProblem& p : plan.problems) shapes += static_cast<int>(GemmPlan::buckets(p.max_m).size());
  log_info("tuning ", shapes, " GEMM shapes (", plan.problems.size(), " weight shapes, ", dtype_name(plan.dtype),
           ") on ", plan.device, " with cuBLASLt ", plan.cublaslt_version);
  // Twice the L2 cache, written between timed runs, leaves none of a product's operands in it.
  Bench bench(options, std::max<std::size_t>(2 * static_cast<std::size_t>(prop.l2CacheSize), std::size_t{8} << 20));
  Tally tally;
  const GemmChoice* best = nullptr;
  const GemmProblem* best_problem = nullptr;
  int index = 0;
  for (GemmProblem& p : plan.problems) {
    const auto problem_start = Clock::now();
    ++index;
    p.choices.clear();
    bench.operands(p.n, p.k, p.max_m, p.dtype);
    for (const int64_t m : GemmPlan::buckets(p.max_m)) {
      if (stop.stop_requested()) throw_error("GEMM tuning was stopped");
      if (auto choice = tune_shape(bench, p, m, p.dtype, options, tally)) {
        p.choices.push_back(*choice);
      } else {
        log_warn("GEMM ", join(p.uses), " n=", p.n, " k=", p.k, " m=", m,
                 ": no cuBLASLt algorithm could be timed; the runtime will use the heuristic");
      }
    }
    double sum = 0;
    for (const GemmChoice& c : p.choices) {
      sum += c.speedup();
      if (!best || c.speedup() > best->speedup()) best = &c, best_problem = &p;
    }
    log_info("  [", index, "/", plan.problems.size(), "] ", join(p.uses), " n=", p.n, " k=", p.k, " ",
             dtype_name(p.dtype), ": ", p.choices.size(), " sizes up to m=", p.max_m, ", ",
             fixed(p.choices.empty() ? 1.0 : sum / static_cast<double>(p.choices.size()), 3),
             "x the heuristic's speed (", fixed(seconds_since(problem_start), 1), " s)");
  }
  plan.seconds = seconds_since(start);
  std::string note;
  if (best && best->speedup() > 1.0) {
    note = concat(", best ", fixed(best->speedup(), 2), "x: ", join(best_problem->uses), " m=", best->m, " (",
                  fixed(best->default_us, 1), " -> ", fixed(best->us, 1), " us)");
  }
  log_info("tuned ", plan.tuned_choices(), " GEMM shapes in ", fixed(plan.seconds, 1),
           " s: ", fixed(plan.mean_speedup(), 3), "x cuBLASLt's heuristic's speed on average", note);
  if (tally.differed > 0 || tally.refused > 0) {
    log_info("  of ", tally.proposed, " heuristic answers, ", tally.refused, " were not accepted and ", tally.differed,
             " differed bytewise once rebuilt from their attributes (timed as rebuilt)");
  }
  return plan;
}

}  // namespace kiln::runtime::cuda
