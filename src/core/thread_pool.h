// A fixed pool of worker threads for data-parallel loops (matmul rows,
// attention heads). One process-wide pool avoids oversubscribing the cores.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into contiguous chunks of at least
  // `grain` items, the caller's thread taking one chunk; returns when all are done.
  // Chunk i runs on thread i (the caller's is 0), so with n <= size() and
  // grain 1 every item has a thread of its own and items may wait on each
  // other (tensor-parallel ranks meeting in an all-reduce).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool, sized by KILN_THREADS or the hardware concurrency.
  static ThreadPool& global();
  // The pool this thread's data-parallel loops use: the one a CurrentPool on
  // this thread names (a tensor-parallel rank's own threads), else global().
  static ThreadPool& current();
  // The threads global() has: what the ranks of one process share out.
  static int global_size();

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::mutex run_mutex_;  // one parallel_for at a time
};

// Makes `pool` this thread's ThreadPool::current() while it lives.
class CurrentPool {
 public:
  explicit CurrentPool(ThreadPool& pool);
  ~CurrentPool();
  CurrentPool(const CurrentPool&) = delete;
  CurrentPool& operator=(const CurrentPool&) = delete;

 private:
  ThreadPool* previous_;
};

}  // namespace kiln
