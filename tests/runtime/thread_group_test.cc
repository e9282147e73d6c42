// Tensor-parallel ranks as threads: the all-reduce gives every rank the same
// sum, added in rank order (so the bits do not depend on which thread came
// first), for any number of ranks and lengths, call after call; a length
// mismatch and a failed rank make every other rank throw, within seconds,
// instead of waiting for ever.
#include "runtime/thread_group.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace kiln::runtime {
namespace {

// Rank r's value at index i: distinct per rank and index, not exactly representable sums.
float value(int rank, int64_t i, int call) {
  return 0.1f * static_cast<float>(rank + 1) + 0.37f * static_cast<float>(i % 11) - 0.013f * static_cast<float>(call);
}

// Runs f(rank) on `size` threads; the first exception of each rank, as its message ("" when none).
std::vector<std::string> on_ranks(int size, const std::function<void(int)>& f) {
  std::vector<std::future<void>> done;
  for (int r = 0; r < size; ++r) done.push_back(std::async(std::launch::async, f, r));
  std::vector<std::string> errors;
  for (auto& d : done) {
    // A rank still running after 10 s hangs: the test fails rather than waits.
    if (d.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "a rank did not return within 10 s";
      std::abort();
    }
    try {
      d.get();
      errors.emplace_back();
    } catch (const std::exception& e) {
      errors.emplace_back(e.what());
    }
  }
  return errors;
}

TEST(ThreadGroup, AllReduceSumsInRankOrderForAnySizeAndLength) {
  for (const int size : {1, 2, 3, 4, 8}) {
    for (const int64_t n : {int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{4099}}) {
      ThreadGroup group(size);
      // The inputs made once (the compiler may contract value()'s arithmetic
      // differently where it is inlined) and the expected sums from them.
      std::vector<std::vector<std::vector<float>>> in(3);
      std::vector<std::vector<float>> want(3);
      for (int call = 0; call < 3; ++call) {
        for (int r = 0; r < size; ++r) {
          in[call].emplace_back();
          for (int64_t i = 0; i < n; ++i) in[call].back().push_back(value(r, i, call));
        }
        want[call] = in[call][0];
        for (int r = 1; r < size; ++r) {
          for (int64_t i = 0; i < n; ++i)
            want[call][static_cast<std::size_t>(i)] += in[call][r][static_cast<std::size_t>(i)];
        }
      }
      std::vector<std::vector<float>> data(static_cast<std::size_t>(size));
      const auto errors = on_ranks(size, [&](int rank) {
        auto& mine = data[static_cast<std::size_t>(rank)];
        for (int call = 0; call < 3; ++call) {  // the same buffers again: the barriers reset
          mine = in[call][static_cast<std::size_t>(rank)];
          group.communicator(rank).all_reduce_sum(mine.data(), n);
          if (mine != want[call]) throw_error("rank ", rank, " call ", call, ": not the sums in rank order");
        }
      });
      for (int r = 0; r < size; ++r) EXPECT_EQ(errors[static_cast<std::size_t>(r)], "") << size << " ranks, n " << n;
    }
  }
}

TEST(ThreadGroup, ALengthMismatchFailsEveryRankNamingBoth) {
  ThreadGroup group(3);
  std::vector<float> bufs[3] = {std::vector<float>(8), std::vector<float>(8), std::vector<float>(8)};
  const auto errors =
      on_ranks(3, [&](int rank) { group.communicator(rank).all_reduce_sum(bufs[rank].data(), rank == 2 ? 5 : 8); });
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("different lengths (rank 0: 8, rank 1: 8, rank 2: 5)"), std::string::npos) << e;
  }
}

TEST(ThreadGroup, AFailedRankReleasesTheOthersWaitingAndLater) {
  ThreadGroup group(4);
  std::vector<float> bufs[4] = {std::vector<float>(4), std::vector<float>(4), std::vector<float>(4),
                                std::vector<float>(4)};
  const auto errors = on_ranks(4, [&](int rank) {
    if (rank == 3) {
      // Fails while the others wait in their all-reduce.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      group.abort(3, "out of memory");
      return;
    }
    group.communicator(rank).all_reduce_sum(bufs[rank].data(), 4);
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_NE(errors[static_cast<std::size_t>(r)].find("tensor-parallel rank 3 failed: out of memory"),
              std::string::npos)
        << errors[static_cast<std::size_t>(r)];
  }
  EXPECT_EQ(errors[3], "");
  // And an all-reduce after the failure throws at once.
  EXPECT_THROW(group.communicator(0).all_reduce_sum(bufs[0].data(), 4), Error);
}

TEST(ThreadGroup, RefusesRanksOutsideIt) {
  EXPECT_THROW(ThreadGroup(0), Error);
  ThreadGroup group(2);
  EXPECT_THROW(group.communicator(2), Error);
  EXPECT_EQ(group.communicator(1).rank(), 1);
  EXPECT_EQ(group.communicator(1).size(), 2);
}

}  // namespace
}  // namespace kiln::runtime
