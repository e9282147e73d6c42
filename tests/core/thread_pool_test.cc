#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace kiln {
namespace {

// Runs parallel_for and checks that every index in [0, n) was visited exactly
// once, by chunks that are contiguous, disjoint and (when n >= grain) at least
// `grain` long.
void check_cover(ThreadPool& pool, int64_t n, int64_t grain) {
  SCOPED_TRACE(testing::Message() << "pool " << pool.size() << ", n " << n << ", grain " << grain);
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex);
    chunks.emplace_back(begin, end);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << "index " << i;
  if (n <= 0) {
    EXPECT_TRUE(chunks.empty());
    return;
  }
  EXPECT_LE(static_cast<int>(chunks.size()), pool.size());
  for (const auto& [begin, end] : chunks) {
    EXPECT_LT(begin, end);
    EXPECT_GE(end - begin, std::min(grain < 1 ? 1 : grain, n)) << "chunk [" << begin << ", " << end << ")";
  }
}

TEST(ThreadPool, ParallelForCoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 4, 7, 16}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 7, 16, 63, 64, 65, 1000, 4099}) {
      for (int64_t grain : {0, 1, 2, 3, 8, 64, 5000}) check_cover(pool, n, grain);
    }
  }
}

TEST(ThreadPool, NonPositiveSizesStillGiveACallerThreadPool) {
  ThreadPool zero(0), negative(-3);
  EXPECT_EQ(zero.size(), 1);
  EXPECT_EQ(negative.size(), 1);
  check_cover(zero, 100, 1);
  check_cover(negative, 100, 1);
}

TEST(ThreadPool, UsesSeveralThreadsAndReturnsOnlyWhenAllChunksAreDone) {
  ThreadPool pool(4);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, 1, [&](int64_t begin, int64_t end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // keep each worker busy long enough to overlap
    for (int64_t i = begin; i < end; ++i) sum += i + 1;
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(sum.load(), 1 + 2 + 3 + 4);  // every chunk finished before parallel_for returned
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(ids.count(std::this_thread::get_id())) << "the caller's thread takes one chunk";
}

TEST(ThreadPool, ManyBackToBackCallsAndConcurrentCallers) {
  ThreadPool pool(5);
  for (int round = 0; round < 300; ++round) {
    std::atomic<int64_t> sum{0};
    const int64_t n = 1 + round % 37;
    pool.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum += i;
    });
    ASSERT_EQ(sum.load(), n * (n - 1) / 2) << "round " << round;
  }
  // Calls from several threads are serialized, never interleaved into one job.
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        const int64_t n = 100 + t;
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        pool.parallel_for(n, 7, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)]++;
        });
        for (auto& h : hits) {
          if (h.load() != 1) ++failures;
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ThreadPool, GlobalPoolIsOneInstance) {
  ThreadPool& a = ThreadPool::global();
  ThreadPool& b = ThreadPool::global();
  EXPECT_EQ(&a, &b);
  EXPECT_GE(a.size(), 1);
  check_cover(a, 777, 3);
}

}  // namespace
}  // namespace kiln
