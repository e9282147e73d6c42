// HttpSocket: a connected, non-blocking TCP socket with the I/O an HTTP server
// needs: reads bounded by a deadline, writes that never raise SIGPIPE and give
// up on a client that stops reading, detection of a client that has gone, and
// cancellation from another thread (how a server that stops ends a request
// that outlives its drain deadline).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <string_view>

namespace kiln::serving {

class HttpSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes ownership of `fd`, which must be a connected, non-blocking socket.
  explicit HttpSocket(int fd);
  ~HttpSocket();
  HttpSocket(const HttpSocket&) = delete;
  HttpSocket& operator=(const HttpSocket&) = delete;

  int fd() const { return fd_; }

  enum class ReadStatus { data, closed, timed_out, failed };
  struct ReadResult {
    ReadStatus status;
    size_t bytes = 0;
  };
  // Reads what is available, waiting until `deadline` for at least one byte.
  ReadResult read_some(char* buffer, size_t size, Clock::time_point deadline);

  // Writes the parts in order, with as few system calls as possible. Fails when
  // the peer has gone or when no byte could be written for `stall_timeout`
  // (a client that stops reading holds the worker no longer than that).
  bool write_all(std::initializer_list<std::string_view> parts, std::chrono::milliseconds stall_timeout);

  // Whether the peer has closed or reset the connection (or it was cancelled),
  // without blocking and without consuming data. Once true, stays true.
  bool peer_gone();

  // From any thread: shuts the socket down in both directions so that blocked
  // reads and writes return at once and peer_gone() reports true.
  void cancel();

  // Stops sending, then reads and discards what the peer still sends until it
  // closes or `max_wait` passes. Closing a socket with unread input makes the
  // kernel send a reset, which can destroy a response written just before
  // (e.g. a 413 while the client is still sending the body).
  void drain_before_close(std::chrono::milliseconds max_wait);

 private:
  // Waits for `events` until `timeout`; false when it passed first.
  bool wait_for(short events, std::chrono::milliseconds timeout);

  int fd_;
  std::atomic<bool> gone_{false};
  std::atomic<bool> cancelled_{false};
};

}  // namespace kiln::serving
