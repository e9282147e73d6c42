// An engine's tensor-parallel ranks run at once in this process: one
// DecoderGraph per rank, each on its own backend with its own threads
// (ThreadPool::current() on that rank's thread), its own KV-cache shard, the
// partial sums meeting in a ThreadGroup's all-reduce. A step is handed to
// every rank (the same StepInput: the scheduler's one plan) and rank 0's
// logits and tokens are the step's. A rank that throws fails the group, so
// the others stop at their next all-reduce, and the step throws its error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/engine_reader.h"
#include "runtime/decoder_graph.h"
#include "runtime/step_executor.h"
#include "runtime/thread_group.h"

namespace kiln::runtime {

class TensorParallelGraph : public StepExecutor {
 public:
  // backends[r] runs rank r; as many as the engine's tensor_parallel ranks.
  // Each rank gets threads_per_rank threads for its data-parallel loops.
  TensorParallelGraph(const engine::Engine& engine, std::vector<Backend*> backends, int threads_per_rank);

  const ModelSpec& spec() const override { return ranks_.front().graph->spec(); }
  void reset_kv_cache(int64_t num_blocks) override;
  // The block tables every rank's shard follows (rank 0's graph keeps them).
  KvCache& kv_cache() override { return ranks_.front().graph->kv_cache(); }
  int64_t block_size() const override { return ranks_.front().graph->block_size(); }
  void forward(const StepInput& step, StepOutput& out, bool full_logits,
               const std::vector<SampleRow>& choices) override;

 private:
  struct Rank {
    std::unique_ptr<ThreadPool> pool;  // the rank's data-parallel threads
    std::unique_ptr<DecoderGraph> graph;
    std::string error;  // the last step's failure, "" when none
  };

  ThreadGroup group_;
  std::vector<Rank> ranks_;
  ThreadPool rank_threads_;  // one thread per rank (the caller's is rank 0's)
};

}  // namespace kiln::runtime
