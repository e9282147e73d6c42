#include "serving/http_termination_signal.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <system_error>

#include "core/error.h"

namespace kiln::serving {
namespace {

// The pipe the handler writes to; -1 while no TerminationSignal exists.
// Lock-free, hence safe to read in a signal handler.
std::atomic<int> g_signal_pipe{-1};
static_assert(std::atomic<int>::is_always_lock_free);

struct sigaction g_previous_sigterm;
struct sigaction g_previous_sigint;

extern "C" void on_termination_signal(int signal_number) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  const int fd = g_signal_pipe.load();
  if (fd >= 0) {
    const auto byte = static_cast<unsigned char>(signal_number);
    [[maybe_unused]] const ssize_t written = ::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

TerminationSignal::TerminationSignal() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw_error("cannot create the termination signal pipe: ", std::system_category().message(errno));
  }
  int expected = -1;
  if (!g_signal_pipe.compare_exchange_strong(expected, fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error("a TerminationSignal already exists in this process");
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  struct sigaction action {};
  action.sa_handler = on_termination_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: the rest of the process keeps running and should not see EINTR for it.
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &action, &g_previous_sigterm);
  ::sigaction(SIGINT, &action, &g_previous_sigint);
}

TerminationSignal::~TerminationSignal() {
  ::sigaction(SIGTERM, &g_previous_sigterm, nullptr);
  ::sigaction(SIGINT, &g_previous_sigint, nullptr);
  g_signal_pipe.store(-1);
  ::close(read_fd_);
  ::close(write_fd_);
}

int TerminationSignal::wait() {
  while (true) {
    if (const auto signal_number = wait_for(std::chrono::hours(1))) return *signal_number;
  }
}

std::optional<int> TerminationSignal::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    unsigned char byte;
    if (::read(read_fd_, &byte, 1) == 1) return static_cast<int>(byte);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd entry{read_fd_, POLLIN, 0};
    ::poll(&entry, 1, static_cast<int>(std::min<std::chrono::milliseconds::rep>(left.count(), 1 << 30)));
  }
}

void TerminationSignal::notify() {
  const unsigned char zero = 0;
  [[maybe_unused]] const ssize_t written = ::write(write_fd_, &zero, 1);
}

int wait_for_termination_signal() {
  TerminationSignal signal;
  return signal.wait();
}

}  // namespace kiln::serving
