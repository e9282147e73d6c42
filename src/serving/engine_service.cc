#include "serving/engine_service.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "runtime/step_executor_factory.h"

namespace kiln::serving {

Job::Update Job::take(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return !pending_.empty() || finished_; });
  Update u;
  u.tokens.swap(pending_);
  u.logprobs.swap(pending_logprobs_);
  u.finished = finished_;
  u.finish_reason = finish_reason_;
  u.error = error_;
  return u;
}

void Job::push(int32_t token, float logprob, bool finished, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(token);
    pending_logprobs_.push_back(logprob);
    if (finished) {
      finished_ = true;
      finish_reason_ = reason;
    }
  }
  changed_.notify_all();
}

void Job::fail(const std::string& reason, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    finish_reason_ = reason;
    error_ = error;
  }
  changed_.notify_all();
}

EngineService::EngineService(const engine::Engine& engine, runtime::Backend& backend, EngineServiceOptions options)
    : limits_(engine.manifest().limits), options_(options), graph_(runtime::make_step_executor(engine, backend)) {
  limits_.max_batch_size = options.max_batch_size;
  // The cache takes the memory budget, and at least one longest sequence.
  const ModelSpec& s = graph_->spec();
  const int64_t tp = engine.manifest().tensor_parallel;
  const int64_t block_bytes = 2 * s.num_layers * s.kv_heads_per_rank(tp) * tp * s.head_dim *
                              backend.kv_bytes_per_value() * graph_->block_size();
  // On a GPU the cache takes what the weights and workspace leave of the allowed share.
  const int64_t budget = backend.kv_cache_budget(options.gpu_memory_utilization).value_or(options.kv_cache_bytes);
  const int64_t longest =
      (limits_.max_input_len + limits_.max_output_len + graph_->block_size() - 1) / graph_->block_size();
  const int64_t wanted = longest * options.max_batch_size;
  const int64_t blocks = std::max(longest, std::min(wanted, budget / std::max<int64_t>(1, block_bytes)));
  graph_->reset_kv_cache(blocks);
  stats_.kv_blocks_total = blocks;
  scheduler_ = std::make_unique<runtime::Scheduler>(*graph_, limits_);
  log_info("KV cache: ", blocks, " blocks of ", graph_->block_size(), " tokens (", blocks * block_bytes / (1 << 20),
           " MiB); up to ", options.max_batch_size, " sequences per step");
  thread_ = std::thread([this] { loop(); });
}

EngineService::~EngineService() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& job : active_) job->fail("cancelled", "the server is shutting down");
  for (auto& job : inbox_) job->fail("cancelled", "the server is shutting down");
}

std::shared_ptr<Job> EngineService::submit(JobRequest request) {
  runtime::check_request(limits_, graph_->spec().vocab_size, graph_->spec().max_positions, request.prompt,
                         request.max_new_tokens);
  runtime::check_sampling(request.sampling);  // refuses invalid sampling parameters now, not in the loop
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_ || static_cast<int64_t>(inbox_.size()) + stats_.waiting >= options_.max_queue) return nullptr;
    job = std::shared_ptr<Job>(new Job(next_id_++, std::move(request)));
    inbox_.push_back(job);
  }
  wake_.notify_all();
  return job;
}

void EngineService::cancel(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancels_.push_back(job->id());
  }
  wake_.notify_all();
}

EngineStats EngineService::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

bool EngineService::accepting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return accepting_;
}

void EngineService::drain(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  accepting_ = false;
  wake_.notify_all();
  wake_.wait_for(lock, deadline, [&] { return inbox_.empty() && active_.empty(); });
}

void EngineService::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> arrived;
    std::vector<uint64_t> cancelled;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || !active_.empty(); });
      if (stopping_) return;
      arrived.assign(inbox_.begin(), inbox_.end());
      inbox_.clear();
      cancelled.swap(cancels_);
    }
    for (auto& job : arrived) {
      const auto& r = job->request();
      scheduler_->submit({job->id(), r.prompt, r.max_new_tokens, r.sampling, r.stop_at_eos});
      active_.push_back(job);
    }
    for (uint64_t id : cancelled) {
      scheduler_->cancel(id);
      for (auto& job : active_) {
        if (job->id() == id) job->fail("cancelled", "");
      }
    }
    std::erase_if(active_, [&](const std::shared_ptr<Job>& j) {
      return std::find(cancelled.begin(), cancelled.end(), j->id()) != cancelled.end();
    });
    int64_t generated = 0;  // this step's tokens, counted with the other stats below
    if (!scheduler_->idle()) {
      try {
        const std::vector<runtime::TokenEvent> events = scheduler_->step();
        generated = static_cast<int64_t>(events.size());
        for (const auto& e : events) {
          auto it = std::find_if(active_.begin(), active_.end(), [&](const auto& j) { return j->id() == e.id; });
          if (it == active_.end()) continue;
          (*it)->push(e.token, e.logprob, e.finished, e.finish_reason);
          if (e.finished) active_.erase(it);
        }
      } catch (const std::exception& e) {
        // A failed step fails the requests in it, never the server.
        log_warn("engine step failed: ", e.what());
        for (auto& job : active_) {
          scheduler_->cancel(job->id());
          job->fail("error", e.what());
        }
        active_.clear();
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.running = static_cast<int64_t>(scheduler_->running());
    stats_.waiting = static_cast<int64_t>(scheduler_->waiting());
    stats_.kv_blocks_free = graph_->kv_cache().free_blocks();
    stats_.preemptions = scheduler_->preemptions();
    stats_.tokens += generated;
    ++stats_.steps;
    if (inbox_.empty() && active_.empty()) wake_.notify_all();  // drain() waits for this
  }
}

}  // namespace kiln::serving
