#include "runtime/tensor_parallel_graph.h"

#include <exception>

#include "core/error.h"

namespace kiln::runtime {

TensorParallelGraph::TensorParallelGraph(const engine::Engine& engine, std::vector<Backend*> backends,
                                         int threads_per_rank)
    : group_(static_cast<int>(backends.size())), rank_threads_(static_cast<int>(backends.size())) {
  const int tp = engine.manifest().tensor_parallel;
  if (static_cast<int>(backends.size()) != tp) {
    throw_error("internal: ", backends.size(), " backends for an engine of ", tp, " tensor-parallel ranks");
  }
  ranks_.resize(static_cast<std::size_t>(tp));
  for (int r = 0; r < tp; ++r) {
    Rank& rank = ranks_[static_cast<std::size_t>(r)];
    rank.pool = std::make_unique<ThreadPool>(std::max(1, threads_per_rank));
    rank.graph = std::make_unique<DecoderGraph>(engine, *backends[static_cast<std::size_t>(r)], group_.communicator(r));
  }
}

void TensorParallelGraph::reset_kv_cache(int64_t num_blocks) {
  for (auto& rank : ranks_) rank.graph->reset_kv_cache(num_blocks);
}

void TensorParallelGraph::forward(const StepInput& step, StepOutput& out, bool full_logits,
                                  const std::vector<SampleRow>& choices) {
  const auto tp = static_cast<int64_t>(ranks_.size());
  // Each rank on a thread of its own (ThreadPool: chunk i on thread i), as they wait on each other.
  rank_threads_.parallel_for(tp, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      Rank& rank = ranks_[static_cast<std::size_t>(r)];
      CurrentPool threads(*rank.pool);
      rank.error.clear();
      try {
        // Rank 0's output is the step's; the others stop after the last layer.
        static const std::vector<SampleRow> kNoChoices;
        StepOutput none;
        rank.graph->forward(step, r == 0 ? out : none, r == 0 && full_logits, r == 0 ? choices : kNoChoices);
      } catch (const std::exception& e) {
        rank.error = e.what();
        group_.abort(static_cast<int>(r), rank.error);  // the other ranks stop at their next all-reduce
      }
    }
  });
  // The first rank that failed says why (the others' errors only repeat it).
  for (std::size_t r = 0; r < ranks_.size(); ++r) {
    const std::string& e = ranks_[r].error;
    if (!e.empty() && e.find("tensor-parallel rank ") == std::string::npos) {
      throw_error("tensor-parallel rank ", r, ": ", e);
    }
  }
  for (const auto& rank : ranks_) {
    if (!rank.error.empty()) throw_error(rank.error);
  }
}

}  // namespace kiln::runtime
