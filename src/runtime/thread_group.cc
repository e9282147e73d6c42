#include "runtime/thread_group.h"

#include "core/error.h"

namespace kiln::runtime {

class ThreadGroup::Member : public Communicator {
 public:
  Member(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size_; }

  void all_reduce_sum(float* data, int64_t n) override {
    ThreadGroup& g = group_;
    if (g.size_ == 1) return;
    std::unique_lock<std::mutex> lock(g.mutex_);
    g.throw_if_failed();
    g.buffers_[static_cast<std::size_t>(rank_)] = data;
    g.lengths_[static_cast<std::size_t>(rank_)] = n;
    g.barrier(lock);  // every buffer posted
    for (int r = 0; r < g.size_; ++r) {
      if (g.lengths_[static_cast<std::size_t>(r)] == n) continue;
      if (g.failure_.empty()) {
        std::string lengths;
        for (int q = 0; q < g.size_; ++q) {
          lengths += concat(q ? ", " : "", "rank ", q, ": ", g.lengths_[static_cast<std::size_t>(q)]);
        }
        g.failure_ = concat("tensor-parallel all-reduce: the ranks passed different lengths (", lengths, ")");
      }
      g.arrived_.notify_all();
      throw_error(g.failure_);
    }
    const std::vector<float*> buffers = g.buffers_;
    lock.unlock();
    // This rank's slice of the elements, summed in rank order and written back to every rank.
    const int64_t begin = n * rank_ / g.size_, end = n * (rank_ + 1) / g.size_;
    for (int64_t i = begin; i < end; ++i) {
      float sum = buffers[0][i];
      for (std::size_t r = 1; r < buffers.size(); ++r) sum += buffers[r][i];
      for (float* b : buffers) b[i] = sum;
    }
    lock.lock();
    g.barrier(lock);  // every slice written: each buffer may be used again
  }

 private:
  ThreadGroup& group_;
  const int rank_;
};

ThreadGroup::ThreadGroup(int size)
    : size_(size), buffers_(static_cast<std::size_t>(size)), lengths_(static_cast<std::size_t>(size)) {
  if (size < 1) throw_error("a thread group needs at least one rank, not ", size);
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<Member>(*this, r));
}

ThreadGroup::~ThreadGroup() = default;

Communicator& ThreadGroup::communicator(int rank) {
  if (rank < 0 || rank >= size_) throw_error("rank ", rank, " is outside the thread group's ", size_, " ranks");
  return *members_[static_cast<std::size_t>(rank)];
}

void ThreadGroup::abort(int rank, const std::string& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failure_.empty()) failure_ = concat("tensor-parallel rank ", rank, " failed: ", why);
  arrived_.notify_all();
}

void ThreadGroup::throw_if_failed() const {
  if (!failure_.empty()) throw_error(failure_);
}

void ThreadGroup::barrier(std::unique_lock<std::mutex>& lock) {
  throw_if_failed();
  const uint64_t generation = generation_;
  if (++waiting_ == size_) {
    waiting_ = 0;
    ++generation_;
    arrived_.notify_all();
    return;
  }
  arrived_.wait(lock, [&] { return generation_ != generation || !failure_.empty(); });
  if (generation_ == generation) {
    --waiting_;  // left without the others: the group failed
    throw_if_failed();
  }
}

}  // namespace kiln::runtime
