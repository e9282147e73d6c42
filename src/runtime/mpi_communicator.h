// Tensor-parallel ranks as processes (one per GPU or host, under mpirun): a
// Communicator over MPI_COMM_WORLD. The all-reduce keeps the Communicator
// contract's bits: each rank receives every rank's slice of the buffer
// (MPI_Alltoallv), sums its slice in rank order, and the summed slices are
// gathered back to every rank (MPI_Allgatherv) -- the ThreadGroup's
// algorithm, with the same result, and the bytes a ring all-reduce moves.
// MPI's own MPI_Allreduce sums in an order of its choosing.
//
// A rank that fails cannot leave the others waiting: abort() ends the whole
// job (MPI_Abort), and Open MPI's mpirun ends every rank when one dies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/communicator.h"

namespace kiln::runtime {

// Whether this process was started by an MPI launcher (mpirun sets
// OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), read from the environment
// without initializing MPI.
bool launched_by_mpi();

// Whether this build has MPI (KILN_MPI: Open MPI's development files were
// present when it was configured).
bool mpi_available();

class MpiCommunicator final : public Communicator {
 public:
  // Initializes MPI (once per process; MPI_Finalize at exit). Throws where
  // the build has no MPI.
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Throws on every rank when the ranks passed different n.
  void all_reduce_sum(float* data, int64_t n) override;
  // Ends every rank of the job, this one's reason on stderr.
  [[noreturn]] void abort(const std::string& why);

 private:
  int rank_ = 0, size_ = 1;
  std::vector<float> gathered_;  // every rank's copy of this rank's slice
};

}  // namespace kiln::runtime
