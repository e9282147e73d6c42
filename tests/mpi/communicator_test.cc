// MpiCommunicator under a real Open MPI job (ctest starts this under mpirun
// with 3 ranks, every rank running the same tests). The reference is the
// Communicator contract: each element the fp32 sum of every rank's value
// added in rank order, bit for bit, on every rank; the inputs are chosen so
// that another order gives other bits (checked, so the test can fail).
//
// With --abort-rank=R the program instead has rank R abort while the others
// wait in an all-reduce: the job must end (non-zero), not hang (ctest's
// mpi.communicator_abort expects the failure within its timeout).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/mpi_communicator.h"

namespace kiln::runtime {
namespace {

MpiCommunicator& world() {
  static MpiCommunicator comm;
  return comm;
}

// Rank r's value at i: magnitudes from 1e-4 to 1e4, so fp32 sums round and
// the order of the additions shows in the bits.
float value(int r, int64_t i) {
  const int digit = static_cast<int>((i * 7 + r * 13) % 11) - 5;
  return static_cast<float>(digit) * std::pow(10.f, static_cast<float>((r * 3 + i) % 9 - 4)) + 0.1f * r;
}

std::vector<float> inputs(int rank, int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = value(rank, i);
  return v;
}

TEST(MpiCommunicator, RunsAsAJobOfSeveralRanks) {
  EXPECT_TRUE(launched_by_mpi());
  EXPECT_GE(world().size(), 2);
  EXPECT_LT(world().rank(), world().size());
}

TEST(MpiCommunicator, SumsInRankOrderBitForBitOnEveryRank) {
  const int size = world().size();
  for (const int64_t n : {int64_t{1000}, int64_t{2}, int64_t{1} << 20}) {  // 2 < 3 ranks: empty slices
    std::vector<float> data = inputs(world().rank(), n);
    world().all_reduce_sum(data.data(), n);
    int64_t order_shows = 0;
    for (int64_t i = 0; i < n; ++i) {
      float forward = value(0, i), backward = value(size - 1, i);
      for (int r = 1; r < size; ++r) forward += value(r, i);
      for (int r = size - 2; r >= 0; --r) backward += value(r, i);
      if (std::memcmp(&forward, &backward, sizeof(float)) != 0) ++order_shows;
      const float got = data[static_cast<std::size_t>(i)];
      ASSERT_EQ(std::memcmp(&got, &forward, sizeof(float)), 0)
          << "n " << n << " element " << i << ": " << got << " vs " << forward << " on rank " << world().rank();
    }
    if (n >= 1000) {
      EXPECT_GT(order_shows, 0) << "the inputs do not tell one order of addition from another";
    }
  }
}

TEST(MpiCommunicator, NothingToSum) { world().all_reduce_sum(nullptr, 0); }

TEST(MpiCommunicator, DifferentLengthsFailEveryRankNamingTheOddOne) {
  std::vector<float> data(8, 1.f);
  const int64_t n = world().rank() == 1 ? 5 : 4;
  try {
    world().all_reduce_sum(data.data(), n);
    FAIL() << "rank " << world().rank() << " was not told of the mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(rank 0: 4, rank 1: 5, rank 2: 4)"), std::string::npos) << e.what();
  }
  // The ranks are still in step: a normal all-reduce follows.
  std::vector<float> one(3, 1.f);
  world().all_reduce_sum(one.data(), 3);
  EXPECT_EQ(one[2], static_cast<float>(world().size()));
}

}  // namespace
}  // namespace kiln::runtime

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--abort-rank=", 13) == 0) {
      auto& comm = kiln::runtime::world();
      if (comm.rank() == std::atoi(argv[i] + 13)) comm.abort("asked to by the test");
      std::vector<float> data(16, 1.f);
      comm.all_reduce_sum(data.data(), 16);  // waits for the aborted rank: MPI ends the job
      return 0;                              // not reached: the test expects a failed job
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
