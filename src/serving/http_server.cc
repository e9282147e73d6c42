#include "serving/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "serving/http_response.h"

namespace kiln::serving {
namespace {

using Clock = std::chrono::steady_clock;

// When the process is out of file descriptors, accepting is paused this long
// rather than spinning on a listener that stays readable.
constexpr std::chrono::milliseconds kAcceptPause{100};
// A cap on the poller's sleep; it wakes earlier for the nearest idle deadline.
constexpr int kMaxPollWaitMs = 1000;

// Sent, without reading the request, to a connection beyond max_connections.
const std::string& over_capacity_response() {
  static const std::string response = http_error_response(503, "too many open connections", {{"Retry-After", "1"}});
  return response;
}

// What to wait for on a connection: its output to leave first (a 100 Continue,
// a refusal), then its input. Waiting for both would spin on input that is not
// read while output is pending.
uint32_t interest(const HttpConnection& connection) {
  return connection.has_pending_output() ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN | EPOLLRDHUP};
}

void check_system_call(int result, const char* what) {
  if (result < 0) throw_error("HTTP server: ", what, " failed: ", std::system_category().message(errno));
}

}  // namespace

HttpServer::HttpServer(Options options) : options_(std::move(options)) {
  if (options_.threads < 1) throw Error("HTTP server: threads must be at least 1");
  if (options_.max_connections < 1) throw Error("HTTP server: max_connections must be at least 1");
  if (options_.max_connections_per_address < 0) {
    throw Error("HTTP server: max_connections_per_address must be 0 (no cap) or more");
  }
  connection_settings_.limits.max_body_bytes = options_.max_body_bytes;
  connection_settings_.limits.max_header_bytes = options_.max_header_bytes;
  connection_settings_.idle_timeout = options_.idle_timeout;
  connection_settings_.header_timeout = options_.header_timeout;
  connection_settings_.body_timeout = options_.body_timeout;
  connection_settings_.write_timeout = options_.write_timeout;
}

HttpServer::~HttpServer() {
  stop(std::chrono::milliseconds(0));
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void HttpServer::route(std::string method, std::string path, HttpHandler handler) {
  if (started_) throw Error("HTTP server: routes must be added before start()");
  router_.add_exact(std::move(method), std::move(path), std::move(handler));
}

void HttpServer::route_prefix(std::string method, std::string prefix, HttpHandler handler) {
  if (started_) throw Error("HTTP server: routes must be added before start()");
  router_.add_prefix(std::move(method), std::move(prefix), std::move(handler));
}

void HttpServer::start() {
  if (started_) throw Error("HTTP server: start() was already called");
  // Writes use MSG_NOSIGNAL; ignoring SIGPIPE (unless someone handles it)
  // also covers the process's other sockets and pipes.
  struct sigaction sigpipe {};
  if (::sigaction(SIGPIPE, nullptr, &sigpipe) == 0 && sigpipe.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
  listener_ = std::make_unique<HttpListenSocket>(options_.host, options_.port, SOMAXCONN);
  port_ = listener_->port();
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  check_system_call(epoll_fd_, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  check_system_call(wake_fd_, "eventfd");
  if (!watch(listener_->fd(), EPOLLIN, EPOLL_CTL_ADD) || !watch(wake_fd_, EPOLLIN, EPOLL_CTL_ADD)) {
    throw Error("HTTP server: cannot poll the listening socket (epoll_ctl failed)");
  }

  started_ = true;
  poller_running_ = true;
  workers_.reserve(static_cast<size_t>(options_.threads));
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { run_worker(); });
  poller_ = std::thread([this] { run_poller(); });
  log_info("HTTP server listening on ", options_.host, ":", port_, " with ", options_.threads, " workers");
}

void HttpServer::stop(std::chrono::milliseconds drain_deadline) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  const auto deadline = Clock::now() + drain_deadline;
  stopping_.store(true);
  wake_poller();
  poller_.join();  // the listener and the idle connections are closed now

  {
    std::unique_lock lock(mutex_);
    if (!drained_.wait_until(lock, deadline, [this] { return busy_.empty() && ready_.empty(); })) {
      log_warn("HTTP server: cancelling ", busy_.size() + ready_.size(),
               " requests still running at the drain deadline");
      for (HttpConnection* connection : busy_) connection->cancel();
      ready_.clear();
    }
    workers_exit_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

bool HttpServer::watch(int fd, uint32_t events, int operation) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, operation, fd, &event) == 0) return true;
  log_warn("HTTP server: epoll_ctl failed: ", std::system_category().message(errno));
  return false;
}

void HttpServer::wake_poller() {
  const uint64_t one = 1;
  // A full counter (never in practice) still leaves the poller woken.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

int HttpServer::poll_timeout_ms() const {
  auto next = next_deadline_;
  if (accept_paused_until_ != Clock::time_point{}) next = std::min(next, accept_paused_until_);
  if (next == Clock::time_point::max()) return kMaxPollWaitMs;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, kMaxPollWaitMs));
}

void HttpServer::run_poller() {
  std::array<epoll_event, 64> events{};
  while (!stopping_.load()) {
    const int count = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), poll_timeout_ms());
    if (count < 0 && errno != EINTR) {
      log_warn("HTTP server: epoll_wait failed: ", std::system_category().message(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (int i = 0; i < count; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == wake_fd_) {
        uint64_t value;
        [[maybe_unused]] const ssize_t drained = ::read(wake_fd_, &value, sizeof value);
      } else if (fd == listener_->fd()) {
        accept_connections();
      } else {
        handle_connection_event(fd);
      }
    }
    adopt_returned_connections();
    close_expired_connections();
    if (accept_paused_until_ != Clock::time_point{} && Clock::now() >= accept_paused_until_) {
      accept_paused_until_ = {};
      watch(listener_->fd(), EPOLLIN, EPOLL_CTL_MOD);
    }
  }
  // Stopping: refuse new connections first, then drop those without a whole request.
  listener_->close();
  watched_.clear();
  std::lock_guard lock(mutex_);
  poller_running_ = false;
  returned_.clear();
}

HttpServer::Admission HttpServer::admit(const std::string& address) {
  std::lock_guard lock(counts_mutex_);
  if (open_connections_ >= static_cast<size_t>(options_.max_connections)) return Admission::over_total;
  ++open_connections_;
  if (options_.max_connections_per_address == 0) return Admission::admitted;
  int& from_address = connections_by_address_[address];
  if (from_address >= options_.max_connections_per_address) return Admission::over_address;
  ++from_address;
  return Admission::admitted;
}

void HttpServer::release(const std::string& address) {
  std::lock_guard lock(counts_mutex_);
  --open_connections_;
  if (address.empty()) return;
  const auto found = connections_by_address_.find(address);
  if (found != connections_by_address_.end() && --found->second <= 0) connections_by_address_.erase(found);
}

void HttpServer::accept_connections() {
  while (true) {
    HttpListenSocket::Accepted accepted = listener_->accept();
    if (accepted.fd < 0) {
      if (accepted.error == EINTR || accepted.error == ECONNABORTED || accepted.error == EPROTO) continue;
      if (accepted.error == EMFILE || accepted.error == ENFILE || accepted.error == ENOBUFS ||
          accepted.error == ENOMEM) {
        log_warn("HTTP server: cannot accept connections: ", std::system_category().message(accepted.error));
        accept_paused_until_ = Clock::now() + kAcceptPause;
        watch(listener_->fd(), 0, EPOLL_CTL_MOD);
      } else if (accepted.error != EAGAIN && accepted.error != EWOULDBLOCK) {
        log_warn("HTTP server: accept failed: ", std::system_category().message(accepted.error));
      }
      return;
    }
    const Admission admission = admit(accepted.remote_ip);
    if (admission == Admission::over_total) {
      // Best effort, holding nothing: the client learns why rather than seeing a bare close.
      const std::string& refusal = over_capacity_response();
      [[maybe_unused]] const ssize_t sent =
          ::send(accepted.fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(accepted.fd);
      continue;
    }
    // Streamed chunks are small and must leave at once, not wait for Nagle.
    const int one = 1;
    ::setsockopt(accepted.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A refused connection counts in all (while it drains) but not for its address.
    std::string counted = admission == Admission::admitted ? accepted.remote_ip : std::string();
    auto connection =
        std::make_unique<HttpConnection>(accepted.fd, std::move(accepted.remote_address), connection_settings_,
                                         [this, counted = std::move(counted)] { release(counted); });
    HttpConnection::Progress progress = HttpConnection::Progress::waiting;
    if (admission == Admission::over_address) {
      progress = connection->reject(429,
                                    concat("too many connections from ", accepted.remote_ip, ": at most ",
                                           options_.max_connections_per_address, " per client address"),
                                    {{"Retry-After", "1"}});
    }
    watch_connection(std::move(connection), progress);
  }
}

void HttpServer::watch_connection(std::unique_ptr<HttpConnection> connection, HttpConnection::Progress progress) {
  if (progress == HttpConnection::Progress::closed) return;
  if (progress == HttpConnection::Progress::request_ready) {
    dispatch(std::move(connection));
    return;
  }
  const int fd = connection->fd();
  const uint32_t events = interest(*connection);
  if (!watch(fd, events, EPOLL_CTL_ADD)) return;  // closes it
  next_deadline_ = std::min(next_deadline_, connection->deadline());
  watched_.emplace(fd, Watched{std::move(connection), events});
}

void HttpServer::handle_connection_event(int fd) {
  const auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  HttpConnection& connection = *found->second.connection;
  // Watched for output while some is pending, else for input (see interest()).
  // A hang-up or an error shows in the write or the read that follows.
  HttpConnection::Progress progress = HttpConnection::Progress::waiting;
  if (connection.has_pending_output()) progress = connection.flush_output();
  if (progress == HttpConnection::Progress::waiting && !connection.has_pending_output()) {
    progress = connection.read_available();
  }
  settle(fd, progress);
}

void HttpServer::settle(int fd, HttpConnection::Progress progress) {
  const auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  switch (progress) {
    case HttpConnection::Progress::closed:
      watched_.erase(found);  // closing the fd also removes it from the epoll set
      return;
    case HttpConnection::Progress::request_ready: {
      std::unique_ptr<HttpConnection> connection = std::move(found->second.connection);
      watched_.erase(found);
      // A worker has it now: what the client sends next waits in the kernel until it is back.
      watch(fd, 0, EPOLL_CTL_DEL);
      dispatch(std::move(connection));
      return;
    }
    case HttpConnection::Progress::waiting: {
      Watched& watched = found->second;
      const uint32_t events = interest(*watched.connection);
      if (events != watched.events) {
        if (!watch(fd, events, EPOLL_CTL_MOD)) {
          watched_.erase(found);
          return;
        }
        watched.events = events;
      }
      next_deadline_ = std::min(next_deadline_, watched.connection->deadline());
      return;
    }
  }
}

void HttpServer::dispatch(std::unique_ptr<HttpConnection> connection) {
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(connection));
  }
  work_ready_.notify_one();
}

void HttpServer::adopt_returned_connections() {
  std::vector<std::unique_ptr<HttpConnection>> returned;
  {
    std::lock_guard lock(mutex_);
    returned.swap(returned_);
  }
  for (auto& connection : returned) {
    // A pipelined request may be buffered already: it would never wake the poller.
    const HttpConnection::Progress progress = connection->parse_buffered();
    watch_connection(std::move(connection), progress);
  }
}

void HttpServer::close_expired_connections() {
  const auto now = Clock::now();
  if (now < next_deadline_) return;
  next_deadline_ = Clock::time_point::max();
  std::vector<int> expired;
  for (const auto& [fd, watched] : watched_) {
    if (watched.connection->deadline() <= now) {
      expired.push_back(fd);
    } else {
      next_deadline_ = std::min(next_deadline_, watched.connection->deadline());
    }
  }
  for (const int fd : expired) settle(fd, watched_.at(fd).connection->expire());
}

void HttpServer::run_worker() {
  while (true) {
    std::unique_ptr<HttpConnection> connection;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return workers_exit_ || !ready_.empty(); });
      if (ready_.empty()) return;
      connection = std::move(ready_.front());
      ready_.pop_front();
      busy_.insert(connection.get());
    }
    const HttpConnection::Next next = connection->serve(router_, stopping_);
    bool returned = false;
    {
      std::lock_guard lock(mutex_);
      busy_.erase(connection.get());
      if (next == HttpConnection::Next::wait_for_request && poller_running_ && !stopping_.load()) {
        returned_.push_back(std::move(connection));
        returned = true;
      }
      if (busy_.empty() && ready_.empty()) drained_.notify_all();
    }
    if (returned) wake_poller();
    // A connection not returned closes here, outside the lock.
  }
}

}  // namespace kiln::serving
