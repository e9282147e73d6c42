// Tensor-parallel ranks as threads of one process: a ThreadGroup of `size`
// ranks hands each its Communicator, whose all-reduce meets the others in
// shared memory (each rank sums a slice of the elements over every rank's
// buffer and writes the slice back to all of them, between two barriers).
// A rank that fails calls abort(): every rank waiting in, or later entering,
// an all-reduce throws an Error naming it, so no rank hangs on a dead one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/communicator.h"

namespace kiln::runtime {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size);
  ~ThreadGroup();
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  int size() const { return size_; }
  // Rank r's communicator, owned by the group; used from that rank's thread only.
  Communicator& communicator(int rank);
  // Fails the group: `rank` says why it cannot go on.
  void abort(int rank, const std::string& why);

 private:
  class Member;
  // Waits until every rank has arrived at this barrier (or the group failed);
  // the lock is held on entry and exit.
  void barrier(std::unique_lock<std::mutex>& lock);
  void throw_if_failed() const;

  const int size_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  int waiting_ = 0;
  uint64_t generation_ = 0;
  std::string failure_;           // empty while every rank is well
  std::vector<float*> buffers_;   // each rank's buffer in the current all-reduce
  std::vector<int64_t> lengths_;  // and its length
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace kiln::runtime
