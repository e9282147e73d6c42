// The engine loop of `kiln serve`: one thread owns the engine (graph, paged KV
// cache, continuous-batching scheduler) and steps it while there is work;
// HTTP threads submit jobs and read each job's tokens as they come. Only the
// loop thread touches the scheduler; submissions and cancellations reach it
// through a locked inbox, so a client that disconnects frees its slot at the
// next step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_reader.h"
#include "runtime/backend.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "runtime/step_executor.h"

namespace kiln::serving {

struct JobRequest {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 256;
  runtime::SamplingParams sampling;
  bool stop_at_eos = true;
};

// What a job has produced so far. Shared by the loop thread (writer) and one
// HTTP thread (reader).
class Job {
 public:
  struct Update {
    std::vector<int32_t> tokens;  // new since the last take
    std::vector<float> logprobs;  // of each token
    bool finished = false;
    std::string finish_reason;  // "eos", "length", "cancelled", "error"
    std::string error;
  };
  // Waits up to `timeout` for news; returns what arrived (possibly nothing).
  Update take(std::chrono::milliseconds timeout);
  uint64_t id() const { return id_; }
  const JobRequest& request() const { return request_; }

 private:
  friend class EngineService;
  Job(uint64_t id, JobRequest request) : id_(id), request_(std::move(request)) {}
  void push(int32_t token, float logprob, bool finished, const std::string& reason);
  void fail(const std::string& reason, const std::string& error);

  uint64_t id_;
  JobRequest request_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<int32_t> pending_;
  std::vector<float> pending_logprobs_;
  bool finished_ = false;
  std::string finish_reason_, error_;
};

struct EngineServiceOptions {
  int64_t max_batch_size = 32;                // running sequences (LMI max_rolling_batch_size)
  int64_t max_queue = 1024;                   // waiting jobs before submit() refuses (overload)
  int64_t kv_cache_bytes = int64_t{4} << 30;  // host-memory backends (the CPU)
  double gpu_memory_utilization = 0.9;        // device backends: the share of the card the process may use
};

struct EngineStats {
  int64_t running = 0, waiting = 0, kv_blocks_total = 0, kv_blocks_free = 0, preemptions = 0, steps = 0;
};

class EngineService {
 public:
  EngineService(const engine::Engine& engine, runtime::Backend& backend, EngineServiceOptions options);
  ~EngineService();  // stops the loop; unfinished jobs end as "cancelled"

  // Validates the request against the engine's limits (throws kiln::Error with
  // the reason) and queues it; nullptr when the queue is full (overload) or the
  // service is draining (accepting() is false).
  std::shared_ptr<Job> submit(JobRequest request);
  void cancel(const std::shared_ptr<Job>& job);
  EngineStats stats() const;
  const ModelSpec& spec() const { return graph_->spec(); }
  const engine::Limits& limits() const { return limits_; }
  // Stops taking jobs, lets running ones finish (bounded by `deadline`), then stops the loop.
  void drain(std::chrono::milliseconds deadline);
  // False from the start of drain(): the server is shutting down.
  bool accepting() const;

 private:
  void loop();

  engine::Limits limits_;
  EngineServiceOptions options_;
  std::unique_ptr<runtime::StepExecutor> graph_;
  std::unique_ptr<runtime::Scheduler> scheduler_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> inbox_;
  std::vector<uint64_t> cancels_;
  std::vector<std::shared_ptr<Job>> active_;  // submitted to the scheduler, by id order
  EngineStats stats_;
  uint64_t next_id_ = 1;
  bool stopping_ = false, accepting_ = true;
  std::thread thread_;
};

}  // namespace kiln::serving
