#include "serving/http_listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/error.h"

namespace kiln::serving {
namespace {

in_addr resolve_ipv4(const std::string& host, const std::string& where) {
  in_addr address{};
  if (host.empty()) {
    address.s_addr = htonl(INADDR_ANY);
    return address;
  }
  if (inet_pton(AF_INET, host.c_str(), &address) == 1) return address;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (status != 0 || found == nullptr) {
    throw_error("cannot listen on ", where, ": cannot resolve the host: ", gai_strerror(status));
  }
  address = reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
  freeaddrinfo(found);
  return address;
}

}  // namespace

HttpListenSocket::HttpListenSocket(const std::string& host, int port, int backlog) {
  const std::string where = concat(host.empty() ? "0.0.0.0" : host, ":", port);
  if (port < 0 || port > 65535) throw_error("cannot listen on ", where, ": the port must be 0 to 65535");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr = resolve_ipv4(host, where);

  // Close-on-exec everywhere: a child process (a compiler, curl) must not
  // inherit the listener and keep the port open after the server stops.
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_error("cannot listen on ", where, ": ", std::system_category().message(errno));
  // A restarted server must not wait for the old connections' TIME_WAIT.
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, backlog) != 0) {
    const int error = errno;
    close();
    throw_error("cannot listen on ", where, ": ", std::system_category().message(error));
  }
  sockaddr_in bound{};
  socklen_t length = sizeof bound;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &length);
  port_ = ntohs(bound.sin_port);
}

HttpListenSocket::~HttpListenSocket() { close(); }

void HttpListenSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

HttpListenSocket::Accepted HttpListenSocket::accept() {
  Accepted accepted;
  sockaddr_in peer{};
  socklen_t length = sizeof peer;
  accepted.fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (accepted.fd < 0) {
    accepted.error = errno;
    return accepted;
  }
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
  accepted.remote_ip = text;
  accepted.remote_address = concat(text, ":", ntohs(peer.sin_port));
  return accepted;
}

}  // namespace kiln::serving
