// HttpSocket: a connected, non-blocking TCP socket with the I/O an HTTP server
// needs: reads and writes that never wait (for the server's event loop),
// writes that never raise SIGPIPE and give up on a client that stops reading, detection of a client that has gone (as
// opposed to one that only finished sending), and cancellation from another thread (how a server that stops ends a
// request that outlives its drain deadline).
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

  // closed: the peer finished sending (it may still read: a half-close).
  enum class ReadStatus { data, closed, would_block, failed };
  struct ReadResult {
    ReadStatus status;
    size_t bytes = 0;
  };
  // Reads what is available without waiting (would_block when nothing is).
  ReadResult try_read(char* buffer, size_t size);
  // Writes what the send buffer takes without waiting: the bytes written
  // (possibly 0), or -1 when the peer has gone.
  long try_write(std::string_view data);

  // Writes the parts in order, with as few system calls as possible. Fails when
  // the peer has gone or when no byte could be written for `stall_timeout`
  // (a client that stops reading holds the worker no longer than that).
  bool write_all(std::initializer_list<std::string_view> parts, std::chrono::milliseconds stall_timeout);

  // Whether the peer has gone: a write failed, the connection was reset or
  // cancelled. Does not block and consumes nothing. Once true, stays true.
  // A peer that only sent FIN has not gone (it may have half-closed and still
  // read); whether it closed altogether shows when something is written to it.
  bool peer_gone();
  // Whether the peer has finished sending (its FIN has arrived), without
  // consuming data.
  bool peer_finished_sending();

  // Stops sending (FIN); reads still work.
  void shutdown_write();

  // From any thread: shuts the socket down in both directions so that blocked
  // reads and writes return at once and peer_gone() reports true.
  void cancel();

 private:
  // Waits for `events` until `timeout`; false when it passed first.
  bool wait_for(short events, std::chrono::milliseconds timeout);

  int fd_;
  std::atomic<bool> gone_{false};
  std::atomic<bool> cancelled_{false};
};

}  // namespace kiln::serving
