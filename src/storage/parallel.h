// Runs tasks 0..n-1 on up to `threads` threads (fresh ones, so that each gets
// its own CURL handle), stops handing out work after the first failure and
// rethrows it. Storage work is I/O-bound, so it does not use the compute pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::storage {

inline void parallel_tasks(int64_t n, int threads, const std::function<void(int64_t)>& task) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  const int count = static_cast<int>(std::clamp<int64_t>(n, 1, std::max(threads, 1)));
  if (count == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < count; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace kiln::storage
