#include "runtime/step_executor_factory.h"

#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/thread_pool.h"
#include "runtime/decoder_graph.h"
#include "runtime/tensor_parallel_graph.h"

namespace kiln::runtime {
namespace {

// The backends of ranks 1.., made before the graph that runs on them.
struct RankBackends {
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> all;
  RankBackends(Backend& first, int ranks) {
    all.push_back(&first);
    for (int r = 1; r < ranks; ++r) {
      owned.push_back(make_cpu_backend());
      all.push_back(owned.back().get());
    }
  }
};

class CpuRanks : private RankBackends, public TensorParallelGraph {
 public:
  CpuRanks(const engine::Engine& engine, Backend& first, int ranks, int threads_per_rank)
      : RankBackends(first, ranks), TensorParallelGraph(engine, all, threads_per_rank) {}
};

bool sequential_ranks() {
  const char* v = std::getenv("KILN_TP_SEQUENTIAL");
  return v != nullptr && std::string_view(v) == "1";
}

}  // namespace

std::unique_ptr<StepExecutor> make_step_executor(const engine::Engine& engine, Backend& backend) {
  const int tp = engine.manifest().tensor_parallel;
  if (tp > 1 && backend.name() == "cpu" && !sequential_ranks()) {
    const int threads = std::max(1, ThreadPool::global_size() / tp);
    log_info("tensor parallel: ", tp, " CPU ranks at once, ", threads, " thread", threads == 1 ? "" : "s", " each");
    return std::make_unique<CpuRanks>(engine, backend, tp, threads);
  }
  return std::make_unique<DecoderGraph>(engine, backend);
}

}  // namespace kiln::runtime
