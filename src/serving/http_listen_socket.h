// HttpListenSocket: the server's listening IPv4 TCP socket: bind, listen and
// non-blocking accept, with errors that name the address.
#pragma once

#include <string>

namespace kiln::serving {

class HttpListenSocket {
 public:
  // Binds `host` (an IPv4 address or a name; "" or "0.0.0.0" for every
  // interface) and `port` (0: an ephemeral one). Throws kiln::Error naming
  // host:port and the system's reason when that fails.
  HttpListenSocket(const std::string& host, int port, int backlog);
  ~HttpListenSocket();
  HttpListenSocket(const HttpListenSocket&) = delete;
  HttpListenSocket& operator=(const HttpListenSocket&) = delete;

  int fd() const { return fd_; }
  int port() const { return port_; }

  struct Accepted {
    int fd = -1;                 // non-blocking, close-on-exec; -1 when nothing was accepted
    int error = 0;               // errno when fd is -1 (EAGAIN: no connection pending)
    std::string remote_address;  // "ip:port"
    std::string remote_ip;       // "ip"
  };
  Accepted accept();
  // Stops listening: connection attempts are refused from now on.
  void close();

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace kiln::serving
