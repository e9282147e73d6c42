#include "runtime/tensor_parallel_graph.h"

#include <exception>

#include "core/error.h"

namespace kiln::runtime {

TensorParallelGraph::TensorParallelGraph(const engine::Engine& engine, std::vector<Backend*> backends,
                                         int threads_per_rank)
    : group_(static_cast<int>(backends.size())) {
  const int tp = engine.manifest().tensor_parallel;
  if (static_cast<int>(backends.size()) != tp) {
    throw_error("internal: ", backends.size(), " backends for an engine of ", tp, " tensor-parallel ranks");
  }
  for (int r = 0; r < tp; ++r) {
    auto rank = std::make_unique<Rank>();
    rank->pool = std::make_unique<ThreadPool>(std::max(1, threads_per_rank));
    rank->graph =
        std::make_unique<DecoderGraph>(engine, *backends[static_cast<std::size_t>(r)], group_.communicator(r));
    ranks_.push_back(std::move(rank));
  }
  for (int r = 1; r < tp; ++r) ranks_[static_cast<std::size_t>(r)]->thread = std::thread([this, r] { worker(r); });
}

TensorParallelGraph::~TensorParallelGraph() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (auto& rank : ranks_) {
    if (rank->thread.joinable()) rank->thread.join();
  }
}

void TensorParallelGraph::reset_kv_cache(int64_t num_blocks) {
  for (auto& rank : ranks_) rank->graph->reset_kv_cache(num_blocks);
}

bool TensorParallelGraph::run_rank(int r) {
  Rank& rank = *ranks_[static_cast<std::size_t>(r)];
  CurrentPool threads(*rank.pool);
  rank.error.clear();
  try {
    if (r == 0) {
      rank.graph->forward(*step_, *out_, full_logits_, *choices_);
    } else {
      StepOutput none;
      rank.graph->forward(*step_, none, false, {});
    }
    return true;
  } catch (const std::exception& e) {
    rank.error = e.what();
    group_.abort(r, rank.error);  // the other ranks stop at their next all-reduce
    return false;
  }
}

void TensorParallelGraph::worker(int r) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_rank(r);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --pending_;
    }
    finished_.notify_all();
  }
}

void TensorParallelGraph::forward(const StepInput& step, StepOutput& out, bool full_logits,
                                  const std::vector<SampleRow>& choices) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    step_ = &step;
    out_ = &out;
    full_logits_ = full_logits;
    choices_ = &choices;
    pending_ = static_cast<int>(ranks_.size()) - 1;
    ++generation_;
  }
  start_.notify_all();
  run_rank(0);
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [&] { return pending_ == 0; });
  // The first rank that failed says why (the others' errors only repeat it).
  for (std::size_t r = 0; r < ranks_.size(); ++r) {
    const std::string& e = ranks_[r]->error;
    if (!e.empty() && e.find("tensor-parallel rank ") == std::string::npos)
      throw_error("tensor-parallel rank ", r, ": ", e);
  }
  for (const auto& rank : ranks_) {
    if (!rank->error.empty()) throw_error(rank->error);
  }
}

}  // namespace kiln::runtime
