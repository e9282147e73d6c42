// Clients for the HTTP server tests: the real curl binary (through popen) for
// what real clients do, and a raw socket for what they never do. Everything
// connects to 127.0.0.1 and is bounded in time.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::serving::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string url(int port, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
}

struct CurlResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs curl with `arguments` (shell syntax), silent but showing errors, capped at 5 s.
inline CurlResult run_curl(const std::string& arguments) {
  CurlResult result;
  const std::string command = "curl -sS --max-time 5 " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t count;
  while ((count = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, count);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// curl -N (no output buffering), read line by line as the lines arrive.
class CurlLineReader {
 public:
  explicit CurlLineReader(const std::string& arguments) {
    pipe_ = ::popen(("curl -sS -N --max-time 5 " + arguments + " 2>&1").c_str(), "r");
  }
  ~CurlLineReader() { close(); }
  CurlLineReader(const CurlLineReader&) = delete;
  CurlLineReader& operator=(const CurlLineReader&) = delete;

  // The next line with its '\n'; nullopt at the end of the output.
  std::optional<std::string> read_line() {
    char buffer[4096];
    if (pipe_ == nullptr || std::fgets(buffer, sizeof buffer, pipe_) == nullptr) return std::nullopt;
    return std::string(buffer);
  }
  std::string read_rest() {
    std::string rest;
    while (auto line = read_line()) rest += *line;
    return rest;
  }
  // curl's exit code.
  int close() {
    if (pipe_ == nullptr) return -1;
    const int status = ::pclose(pipe_);
    pipe_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  FILE* pipe_ = nullptr;
};

// Connects to 127.0.0.1:port; returns the fd, or -errno.
inline int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    return -error;
  }
  return fd;
}

// A client that writes exactly the bytes given, for malformed and edge-case requests.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(connect_to(port)) {}
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }
  // Receives into the buffer for up to `timeout`; false on close, error or timeout.
  bool receive_some(std::chrono::milliseconds timeout) {
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char chunk[16384];
    const ssize_t count = ::recv(fd_, chunk, sizeof chunk, 0);
    if (count <= 0) {
      peer_closed_ = count == 0;
      return false;
    }
    received_.append(chunk, static_cast<size_t>(count));
    return true;
  }
  // Everything until the server closes the connection (or `timeout` passes).
  std::string read_until_closed(std::chrono::milliseconds timeout = 3s) {
    const auto deadline = Clock::now() + timeout;
    while (!peer_closed_ && Clock::now() < deadline && receive_some(remaining(deadline))) {
    }
    return take(received_.size());
  }
  // Everything up to and including `text` (or all received when `timeout` passes first).
  std::string read_until(std::string_view text, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = Clock::now() + timeout;
    while (received_.find(text) == std::string::npos && Clock::now() < deadline) {
      if (!receive_some(remaining(deadline))) break;
    }
    const size_t found = received_.find(text);
    return take(found == std::string::npos ? received_.size() : found + text.size());
  }
  // One response framed by Content-Length (head and body).
  std::string read_response(std::chrono::milliseconds timeout = 3s) {
    const auto deadline = Clock::now() + timeout;
    std::string head = read_until("\r\n\r\n", timeout);
    size_t length = 0;
    for (std::string_view name : {"Content-Length: ", "content-length: "}) {
      const size_t at = head.find(name);
      if (at != std::string::npos) length = std::stoul(head.substr(at + name.size()));
    }
    while (received_.size() < length && Clock::now() < deadline && receive_some(remaining(deadline))) {
    }
    return head + take(std::min(length, received_.size()));
  }
  // Whether the server closes the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!peer_closed_ && Clock::now() < deadline) receive_some(remaining(deadline));
    return peer_closed_;
  }
  // Half-closes: the server sees the end of the request stream but can still answer.
  bool shutdown_write() { return ::shutdown(fd_, SHUT_WR) == 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  static std::chrono::milliseconds remaining(Clock::time_point deadline) {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  }
  std::string take(size_t count) {
    std::string taken = received_.substr(0, count);
    received_.erase(0, count);
    return taken;
  }

  int fd_;
  std::string received_;
  bool peer_closed_ = false;
};

// The response with interim (1xx) responses before it removed: a server may
// send them to any HTTP/1.1 client (RFC 9110 15.2).
inline std::string without_interim_responses(std::string response) {
  while (response.rfind("HTTP/1.1 1", 0) == 0) {
    const size_t end = response.find("\r\n\r\n");
    if (end == std::string::npos) break;
    response.erase(0, end + 4);
  }
  return response;
}

// The body of a chunked response (after its head), decoded; empty when malformed.
inline std::string dechunk(std::string_view body) {
  std::string decoded;
  while (true) {
    const size_t line_end = body.find("\r\n");
    if (line_end == std::string_view::npos) return {};
    const size_t size = std::stoul(std::string(body.substr(0, line_end)), nullptr, 16);
    if (size == 0) return decoded;
    if (body.size() < line_end + 2 + size + 2) return {};
    decoded.append(body.substr(line_end + 2, size));
    body.remove_prefix(line_end + 2 + size + 2);
  }
}

// A file under the test's temporary directory holding `content`.
inline std::string write_temp_file(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// `size` bytes of every value, so that binary bodies are exercised.
inline std::string binary_payload(size_t size) {
  std::string payload(size, '\0');
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return payload;
}

}  // namespace kiln::serving::testing
