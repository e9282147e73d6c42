// HttpConnection: one client's TCP connection. A worker thread calls serve()
// when request bytes have arrived: it reads the request (answering
// `Expect: 100-continue` and refusing what breaks the limits), runs the
// route's handler and completes its response, and returns whether the
// connection should wait for the next request (keep-alive) or be closed.
// Between requests the connection waits in the server's poller, holding no
// thread, so idle keep-alive clients cost no worker.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "serving/http_request_parser.h"
#include "serving/http_router.h"
#include "serving/http_socket.h"

namespace kiln::serving {

struct HttpConnectionSettings {
  HttpParserLimits limits;
  std::chrono::milliseconds request_timeout{60000};  // to receive a whole request once it has begun
  std::chrono::milliseconds write_timeout{30000};    // a write making no progress this long fails
};

class HttpConnection {
 public:
  enum class Next { wait_for_request, close };

  // Takes ownership of `fd` (connected, non-blocking). `settings` must outlive it.
  HttpConnection(int fd, std::string remote_address, const HttpConnectionSettings& settings);

  int fd() const { return socket_.fd(); }
  // Serves the requests that have arrived, pipelined ones included.
  Next serve(const HttpRouter& router, const std::atomic<bool>& server_stopping);
  // From any thread: ends the request in progress (reads and writes fail,
  // client_gone() turns true) so that a stopping server need not wait for it.
  void cancel() { socket_.cancel(); }

 private:
  // Reads one whole request into the parser; false when the connection must
  // close (the peer left, or the request was refused and answered).
  bool read_request();
  // Routes and answers the parsed request; true when the connection can be kept.
  bool respond(const HttpRouter& router, const std::atomic<bool>& server_stopping);
  // Answers a request that cannot be served and prepares the close.
  void refuse(int status, std::string_view message);

  HttpSocket socket_;
  std::string remote_address_;
  const HttpConnectionSettings& settings_;
  HttpRequestParser parser_;
};

}  // namespace kiln::serving
