// HttpConnection: one client's TCP connection. The server's event loop (its
// poller thread) receives each request without blocking: read_available()
// parses what has arrived, answers `Expect: 100-continue`, enforces the
// header and body deadlines (408) and the size limits (413, 431, ...), and
// says when a whole request is in. Only then does a worker thread take the
// connection and serve() it: run the route's handler, complete its response,
// and say whether the connection should wait for the next request
// (keep-alive) or be closed. A slow or idle client therefore costs a socket
// and a buffer, never a worker.
//
// Refusals are written by the event loop too, without blocking: the
// connection then "drains" (reads and drops what the client still sends, for
// a short while) before it closes, so that closing with unread input cannot
// reset the connection and destroy the refusal.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "serving/http_request.h"
#include "serving/http_request_parser.h"
#include "serving/http_router.h"
#include "serving/http_socket.h"

namespace kiln::serving {

struct HttpConnectionSettings {
  HttpParserLimits limits;
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive wait for the first byte of the next request
  std::chrono::milliseconds header_timeout{20000};  // to receive a request head (from its first byte, or the accept)
  std::chrono::milliseconds body_timeout{60000};    // to receive a request body (from the end of the head)
  std::chrono::milliseconds write_timeout{30000};   // a write making no progress this long fails
};

class HttpConnection {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Next { wait_for_request, close };
  // What receiving led to: keep waiting in the event loop (more input, output
  // to flush, or a refusal draining), a whole request to serve, or the close.
  enum class Progress { waiting, request_ready, closed };

  // Takes ownership of `fd` (connected, non-blocking). `settings` must outlive
  // it. `on_close` (if any) runs when the connection is destroyed, on
  // whichever thread destroys it.
  HttpConnection(int fd, std::string remote_address, const HttpConnectionSettings& settings,
                 std::function<void()> on_close = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  int fd() const { return socket_.fd(); }

  // Event loop. Reads what has arrived (never waiting) and parses it, bytes
  // already buffered first (a pipelined request).
  Progress read_available();
  // Event loop: parses the bytes already buffered, reading nothing (for a
  // connection coming back from a worker with a pipelined request).
  Progress parse_buffered();
  // Event loop: writes pending output (100 Continue, a refusal) as far as the
  // socket takes it.
  Progress flush_output();
  bool has_pending_output() const { return output_sent_ < output_.size(); }
  // Event loop: when the current wait ends (idle, head, body or drain deadline).
  Clock::time_point deadline() const { return deadline_; }
  // Event loop, at the deadline: a request that had begun is answered 408 (and
  // drains); an idle or draining connection closes.
  Progress expire();
  // Event loop: answers `status` without reading a request (a connection
  // refused on accept), then drains and closes.
  Progress reject(int status, std::string_view message, const HttpHeaders& extra_headers = {});

  // Worker: serves the whole request that read_available() reported.
  Next serve(const HttpRouter& router, const std::atomic<bool>& server_stopping);
  // From any thread: ends the request in progress (reads and writes fail,
  // client_gone() turns true) so that a stopping server need not wait for it.
  void cancel() { socket_.cancel(); }

 private:
  enum class Wait { idle, head, body, drain };

  // Routes and answers the parsed request; true when the connection can be kept.
  bool respond(const HttpRouter& router, const std::atomic<bool>& server_stopping);
  // Queues an error response and starts draining.
  Progress refuse(int status, std::string_view message, const HttpHeaders& extra_headers = {});
  // Writes what it can of output_ without waiting; false when the peer has gone.
  bool write_pending();
  Progress drain_available();
  void wait_for(Wait wait, std::chrono::milliseconds timeout);

  HttpSocket socket_;
  std::string remote_address_;
  const HttpConnectionSettings& settings_;
  std::function<void()> on_close_;
  HttpRequestParser parser_;
  Wait wait_ = Wait::head;  // a new connection's first head is due within header_timeout of the accept
  Clock::time_point deadline_;
  std::string output_;  // written by the event loop: 100 Continue, a refusal
  size_t output_sent_ = 0;
};

}  // namespace kiln::serving
