// HttpServer: the HTTP/1.1 server of `kiln serve`. One poller thread (the
// event loop) accepts connections and receives every request without
// blocking, from its first byte to the end of its body, so that slow or idle
// clients hold no thread; a fixed pool of worker threads serves whole
// requests, one request per worker for its whole duration, so a stream that
// lasts minutes holds one worker and no more: size `threads` above the number
// of concurrent streams you admit (the engine's batch size) plus a few for
// quick requests. Connections are capped in all and per client address.
// stop() drains.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "serving/http_connection.h"
#include "serving/http_listen_socket.h"
#include "serving/http_router.h"

namespace kiln::serving {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // IPv4 address or name; "0.0.0.0" for every interface
  int port = 8080;                 // 0: an ephemeral port (see HttpServer::port())
  int threads = 16;                // requests served at once
  int max_connections = 1024;      // open at once; beyond it new connections get a 503 and the close
  // Open at once from one client IP address, loopback included; beyond it new
  // connections from that address get a 429 and the close. 0: no cap. Behind a
  // proxy, every client has the proxy's address: raise it there.
  int max_connections_per_address = 64;
  size_t max_body_bytes = size_t{16} << 20;                           // larger bodies get a 413
  size_t max_header_bytes = size_t{64} << 10;                         // larger heads get a 431
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);  // keep-alive wait for the next request
  // To receive a request head, from its first byte (a new connection's: from
  // the accept); a head begun and not ended in time gets a 408.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(20);
  std::chrono::milliseconds body_timeout = std::chrono::seconds(60);   // to receive the body once the head is in (408)
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);  // a client that reads nothing this long is gone
};

class HttpServer {
 public:
  using Options = HttpServerOptions;

  explicit HttpServer(Options options = {});
  ~HttpServer();  // stops at once (no drain) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes, added before start(): by exact path, or by path prefix.
  void route(std::string method, std::string path, HttpHandler handler);
  void route_prefix(std::string method, std::string prefix, HttpHandler handler);

  // Binds and listens (throws kiln::Error naming host:port and the reason on
  // failure), then serves in background threads.
  void start();
  // The bound port: the ephemeral one when Options::port is 0.
  int port() const { return port_; }

  // Closes the listener (connection attempts are refused before it begins to
  // wait) and the connections that have no whole request (idle ones, those
  // still receiving one), lets in-flight requests finish until
  // `drain_deadline` (their responses say "Connection: close"), then cancels
  // those still running (writes fail and client_gone() turns true, so handlers
  // that heed them return) and joins the threads. Call it from one thread;
  // later calls do nothing.
  void stop(std::chrono::milliseconds drain_deadline);

 private:
  // A connection in the poller's care: between requests, receiving one, or
  // draining after a refusal.
  struct Watched {
    std::unique_ptr<HttpConnection> connection;
    uint32_t events = 0;  // the epoll interest registered for it
  };
  enum class Admission { admitted, over_total, over_address };

  void run_poller();
  void run_worker();
  void accept_connections();
  void handle_connection_event(int fd);
  // Acts on what receiving led to: keeps watching, hands the request to a worker, or closes.
  void settle(int fd, HttpConnection::Progress progress);
  // Starts watching a connection the poller was not watching.
  void watch_connection(std::unique_ptr<HttpConnection> connection, HttpConnection::Progress progress);
  void dispatch(std::unique_ptr<HttpConnection> connection);
  void adopt_returned_connections();
  void close_expired_connections();
  int poll_timeout_ms() const;
  // epoll_ctl; false (logged) when it fails, which the poller survives.
  bool watch(int fd, uint32_t events, int operation);
  void wake_poller();
  // Counts a new connection from `address` (its IP); release() uncounts it.
  Admission admit(const std::string& address);
  void release(const std::string& address);

  Options options_;
  HttpConnectionSettings connection_settings_;
  HttpRouter router_;
  std::unique_ptr<HttpListenSocket> listener_;
  int port_ = 0;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: workers returning connections and stop() wake the poller
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
  std::vector<std::thread> workers_;

  // Open connections, wherever they are; guarded by counts_mutex_ (connections
  // are closed on the poller, on workers and in stop()).
  std::mutex counts_mutex_;
  size_t open_connections_ = 0;
  std::unordered_map<std::string, int> connections_by_address_;  // those admitted, by client IP

  // Owned by the poller thread.
  std::unordered_map<int, Watched> watched_;  // by fd
  std::chrono::steady_clock::time_point next_deadline_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point accept_paused_until_{};

  std::mutex mutex_;                                       // guards the fields below
  std::condition_variable work_ready_;                     // workers wait for ready_ or exit
  std::condition_variable drained_;                        // stop() waits for in-flight requests
  std::deque<std::unique_ptr<HttpConnection>> ready_;      // whole requests received; wait for a worker
  std::vector<std::unique_ptr<HttpConnection>> returned_;  // served, to wait in the poller for the next request
  std::unordered_set<HttpConnection*> busy_;               // being served by a worker
  bool poller_running_ = false;
  bool workers_exit_ = false;
};

}  // namespace kiln::serving
