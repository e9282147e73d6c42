#include "serving/http_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <stdexcept>

namespace kiln::serving {
namespace {

// Responses are a head, a body and at most a chunk frame around it.
constexpr size_t kMaxParts = 8;

int poll_timeout_ms(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, 1 << 30));
}

}  // namespace

HttpSocket::HttpSocket(int fd) : fd_(fd) {}

HttpSocket::~HttpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool HttpSocket::wait_for(short events, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    pollfd entry{fd_, events, 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    const int ready = ::poll(&entry, 1, poll_timeout_ms(left));
    if (ready > 0) return true;  // readiness, or an error the next call will report
    if (ready == 0 || errno != EINTR) return false;
  }
}

HttpSocket::ReadResult HttpSocket::try_read(char* buffer, size_t size) {
  while (true) {
    const ssize_t received = ::recv(fd_, buffer, size, MSG_DONTWAIT);
    if (received > 0) return {ReadStatus::data, static_cast<size_t>(received)};
    if (received == 0) return {ReadStatus::closed};
    if (errno == EINTR) continue;
    return {errno == EAGAIN || errno == EWOULDBLOCK ? ReadStatus::would_block : ReadStatus::failed};
  }
}

long HttpSocket::try_write(std::string_view data) {
  if (cancelled_.load()) return -1;
  while (true) {
    const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return static_cast<long>(sent);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    gone_.store(true);
    return -1;
  }
}

bool HttpSocket::write_all(std::initializer_list<std::string_view> parts, std::chrono::milliseconds stall_timeout) {
  if (parts.size() > kMaxParts) throw std::invalid_argument("HttpSocket::write_all: too many parts");
  std::array<iovec, kMaxParts> vectors{};
  size_t count = 0;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    vectors[count++] = iovec{const_cast<char*>(part.data()), part.size()};
  }
  size_t first = 0;
  while (first < count) {
    if (cancelled_.load()) return false;
    msghdr message{};
    message.msg_iov = &vectors[first];
    message.msg_iovlen = count - first;
    // MSG_NOSIGNAL: a vanished peer is an EPIPE to handle, not a signal that kills the process.
    const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(POLLOUT, stall_timeout)) continue;
      gone_.store(true);  // EPIPE, ECONNRESET, or a client that stopped reading
      return false;
    }
    size_t advance = static_cast<size_t>(sent);
    while (first < count && advance >= vectors[first].iov_len) advance -= vectors[first++].iov_len;
    if (first < count) {
      vectors[first].iov_base = static_cast<char*>(vectors[first].iov_base) + advance;
      vectors[first].iov_len -= advance;
    }
  }
  return true;
}

bool HttpSocket::peer_gone() {
  if (gone_.load() || cancelled_.load()) return true;
  pollfd entry{fd_, 0, 0};
  // POLLHUP: reset, or closed in both directions; POLLERR: a pending error
  // (ECONNRESET). A FIN alone (POLLRDHUP) is not a departure: HTTP clients may
  // half-close once their request is sent.
  if (::poll(&entry, 1, 0) <= 0) return false;
  const bool gone = (entry.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
  if (gone) gone_.store(true);
  return gone;
}

bool HttpSocket::peer_finished_sending() {
  pollfd entry{fd_, POLLRDHUP, 0};
  return ::poll(&entry, 1, 0) > 0 && (entry.revents & (POLLRDHUP | POLLHUP)) != 0;
}

void HttpSocket::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

void HttpSocket::cancel() {
  cancelled_.store(true);
  ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace kiln::serving
