#include "runtime/mpi_communicator.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"

#ifdef KILN_MPI
#include <mpi.h>
#endif

namespace kiln::runtime {

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name)) return true;
  }
  return false;
}

#ifdef KILN_MPI

bool mpi_available() { return true; }

namespace {

void check(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw_error(what, ": ", std::string(text, static_cast<std::size_t>(length)));
}

// Slice r of n elements over `size` ranks: [begin, begin + count).
int64_t slice_begin(int64_t n, int size, int r) { return n * r / size; }

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  // Errors come back as codes (turned into kiln::Error), not a silent abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() = default;

void MpiCommunicator::all_reduce_sum(float* data, int64_t n) {
  // Every rank's n first: a mismatch fails every rank alike, before any data moves.
  std::vector<int64_t> lengths(static_cast<std::size_t>(size_));
  check(MPI_Allgather(&n, 1, MPI_INT64_T, lengths.data(), 1, MPI_INT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  bool same = true;
  for (const int64_t length : lengths) same = same && length == n;
  if (!same) {
    std::string counts;
    for (int r = 0; r < size_; ++r)
      counts += concat(r ? ", " : "", "rank ", r, ": ", lengths[static_cast<std::size_t>(r)]);
    throw_error("tensor-parallel all-reduce: the ranks passed different numbers of values (", counts, ")");
  }
  if (size_ == 1 || n == 0) return;
  if (n > std::numeric_limits<int>::max())
    throw_error("tensor-parallel all-reduce of ", n, " values: too many for MPI");
  // Rank r sums slice r: send slice r of this buffer to rank r; receive this
  // rank's slice of every buffer, rank after rank.
  const int64_t mine = slice_begin(n, size_, rank_), count = slice_begin(n, size_, rank_ + 1) - mine;
  std::vector<int> send_counts(static_cast<std::size_t>(size_)), send_offsets(send_counts.size()),
      recv_counts(send_counts.size()), recv_offsets(send_counts.size());
  for (int r = 0; r < size_; ++r) {
    const auto i = static_cast<std::size_t>(r);
    send_offsets[i] = static_cast<int>(slice_begin(n, size_, r));
    send_counts[i] = static_cast<int>(slice_begin(n, size_, r + 1)) - send_offsets[i];
    recv_counts[i] = static_cast<int>(count);
    recv_offsets[i] = static_cast<int>(count * r);
  }
  gathered_.resize(static_cast<std::size_t>(count * size_));
  check(MPI_Alltoallv(data, send_counts.data(), send_offsets.data(), MPI_FLOAT, gathered_.data(), recv_counts.data(),
                      recv_offsets.data(), MPI_FLOAT, MPI_COMM_WORLD),
        "MPI_Alltoallv");
  for (int64_t i = 0; i < count; ++i) {
    float sum = gathered_[static_cast<std::size_t>(i)];
    for (int r = 1; r < size_; ++r) sum += gathered_[static_cast<std::size_t>(count * r + i)];
    data[mine + i] = sum;
  }
  // Every rank's summed slice to every rank, in place.
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data, send_counts.data(), send_offsets.data(), MPI_FLOAT,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
}

void MpiCommunicator::abort(const std::string& why) {
  std::fprintf(stderr, "kiln: rank %d of %d cannot go on: %s\n", rank_, size_, why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return; in case it does
}

#else

bool mpi_available() { return false; }

MpiCommunicator::MpiCommunicator() {
  throw_error("this kiln was built without MPI (install Open MPI's development files, libopenmpi-dev, and rebuild)");
}
MpiCommunicator::~MpiCommunicator() = default;
void MpiCommunicator::all_reduce_sum(float*, int64_t) {}
void MpiCommunicator::abort(const std::string& why) {
  std::fprintf(stderr, "kiln: %s\n", why.c_str());
  std::abort();
}

#endif

}  // namespace kiln::runtime
