// What tensor-parallel ranks need of each other: a sum of every rank's partial
// output (after the attention output and the MLP down projection, whose
// weights are split by rows of their input). One implementation per way ranks
// run: threads of one process sharing memory (ThreadGroup), later NCCL on GPUs
// and MPI between processes.
#pragma once

#include <cstdint>

namespace kiln::runtime {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank passes its `n` floats; on return each holds the sum over the
  // ranks, added in rank order (rank 0's first), so the result is the same
  // bits whatever the timing. Throws when another rank failed or passed
  // another n, never waiting for a rank that will not come.
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
};

}  // namespace kiln::runtime
