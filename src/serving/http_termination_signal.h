// TerminationSignal: turns SIGTERM and SIGINT into an event that main() waits
// for, so that `kiln serve` can drain its requests (HttpServer::stop) instead
// of dying in the middle of responses. The handler only writes to a pipe (the
// self-pipe trick), which is async-signal-safe and works whichever thread the
// kernel delivers the signal to, so no signal mask needs setting up.
#pragma once

#include <chrono>
#include <optional>

namespace kiln::serving {

class TerminationSignal {
 public:
  // Installs the handlers for SIGTERM and SIGINT; one instance at a time per
  // process (a second throws kiln::Error).
  TerminationSignal();
  ~TerminationSignal();  // restores the previous handlers
  TerminationSignal(const TerminationSignal&) = delete;
  TerminationSignal& operator=(const TerminationSignal&) = delete;

  // Blocks until SIGTERM or SIGINT arrives, or notify() is called; returns the
  // signal number, or 0 for notify().
  int wait();
  // As wait(), but gives up after `timeout` (nullopt).
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // Wakes the waiter from any thread, e.g. when the engine fails and the
  // server must stop anyway.
  void notify();

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// Blocks until SIGTERM or SIGINT arrives; returns its number. For main():
//   server.start(); wait_for_termination_signal(); server.stop(drain_deadline);
int wait_for_termination_signal();

}  // namespace kiln::serving
