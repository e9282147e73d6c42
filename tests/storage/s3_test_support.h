// Loopback S3 for the storage tests: a moto server (and optionally a
// fault-injecting proxy in front of it) started by the test and stopped with it.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/s3_client.h"

namespace kiln::test {

namespace fs = std::filesystem;

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A child process (argv, extra environment), killed and reaped on destruction.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env) {
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ <= 0 || reaped_) return;  // a reaped PID may be another process's by now
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  bool running() {
    if (pid_ <= 0 || reaped_) return false;
    if (::waitpid(pid_, nullptr, WNOHANG) == 0) return true;
    reaped_ = true;
    return false;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Waits (bounded) until the port accepts connections; fails the test otherwise.
inline void wait_for_port(ChildProcess& process, int port, const std::string& what) {
  for (int i = 0; i < 300; ++i) {
    if (port_accepts(port)) return;
    if (!process.running()) {
      FAIL() << what << " exited before listening on port " << port
             << " (is moto installed? `pip install 'moto[server]'`; CI must provide it)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << what << " did not listen on port " << port << " within 15 s";
}

// `python3 -m moto.server` on a free loopback port.
class MotoServer {
 public:
  explicit MotoServer(std::vector<std::pair<std::string, std::string>> env = {})
      : port_(free_loopback_port()),
        process_({"python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", std::to_string(port_)}, std::move(env)) {
    wait_for_port(process_, port_, "moto server");
  }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  ChildProcess process_;
};

// tests/storage/fault_proxy.py in front of an upstream port; `options` are
// its flags (--log FILE, --deny METHOD:TEXT, --outage-after ..., see the script).
// `port` 0 picks a free one; a given port restarts a proxy where one was.
class FaultProxy {
 public:
  FaultProxy(int upstream_port, int fail_every, std::vector<std::string> options = {}, int port = 0)
      : port_(port != 0 ? port : free_loopback_port()),
        process_(proxy_argv(port_, upstream_port, fail_every, std::move(options)), {}) {
    wait_for_port(process_, port_, "fault proxy");
  }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool running() { return process_.running(); }

 private:
  static std::vector<std::string> proxy_argv(int port, int upstream_port, int fail_every,
                                             std::vector<std::string> options) {
    std::vector<std::string> argv{"python3", std::string(KILN_SOURCE_DIR) + "/tests/storage/fault_proxy.py",
                                  std::to_string(port), std::to_string(upstream_port), std::to_string(fail_every)};
    for (auto& o : options) argv.push_back(std::move(o));
    return argv;
  }
  int port_;
  ChildProcess process_;
};

// One line of the proxy's --log: "start SEQ METHOD PATH [RANGE]", "end SEQ
// METHOD PATH STATUS [BYTES]", or an event ("outage start", "exit").
struct ProxyLogLine {
  std::string kind;  // start, end, outage, exit
  int seq = -1;
  std::string method, path, status, extra;
};

inline std::vector<ProxyLogLine> read_proxy_log(const fs::path& log) {
  std::vector<ProxyLogLine> lines;
  std::ifstream in(log);
  std::string text;
  while (std::getline(in, text)) {
    std::istringstream words(text);
    ProxyLogLine l;
    words >> l.kind;
    if (l.kind == "start" || l.kind == "end") {
      words >> l.seq >> l.method >> l.path;
      if (l.kind == "end") words >> l.status;
      std::getline(words >> std::ws, l.extra);
    } else {
      words >> l.status;  // "outage start" / "outage end"
    }
    lines.push_back(std::move(l));
  }
  return lines;
}

inline storage::S3Settings test_settings(const std::string& endpoint) {
  storage::S3Settings s;
  s.credentials = {"testing", "testing", "", "test credentials"};
  s.region = "us-east-1";
  s.endpoint = endpoint;
  return s;
}

// Fast retries for tests: the behaviour is the same, the waits are short.
inline storage::RetryPolicy fast_retries() {
  return storage::RetryPolicy{
      .max_attempts = 8, .base_delay = std::chrono::milliseconds(5), .max_delay = std::chrono::milliseconds(50)};
}

// The environment that both kiln and the aws CLI read, pointed at `endpoint`.
inline std::string aws_env(const std::string& endpoint) {
  return "env AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 "
         "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ENDPOINT_URL=" +
         endpoint + " ";
}

struct CommandResult {
  int status = -1;
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// Deterministic pseudo-random bytes (splitmix64): fast to make, unlike real data compressible never.
inline std::string random_bytes(std::size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed;
  for (std::size_t i = 0; i < size; i += 8) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, std::min<std::size_t>(8, size - i));
  }
  return out;
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A small tree with nested directories, an empty file, odd names and one multi-part file.
inline std::vector<std::pair<std::string, std::string>> sample_tree(std::size_t large_size) {
  return {{"engine.json", "{\"format\": 1}\n"},
          {"rank0.bin", random_bytes(large_size, 1)},
          {"rank1.bin", random_bytes(300000, 2)},
          {"tokenizer/tokenizer.json", random_bytes(12345, 3)},
          {"tokenizer/empty.txt", ""},
          {"deep/a/b/c name+plus&amp.txt", "spaces, plus and ampersand in the key"}};
}

inline void write_tree(const fs::path& root, const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& [rel, bytes] : files) write_bytes(root / rel, bytes);
}

inline void expect_tree(const fs::path& root, const std::vector<std::pair<std::string, std::string>>& files) {
  std::size_t count = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) count += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(count, files.size()) << "files under " << root;
  for (const auto& [rel, bytes] : files) {
    ASSERT_TRUE(fs::exists(root / rel)) << rel;
    EXPECT_TRUE(read_bytes(root / rel) == bytes) << rel << " differs";
  }
}

}  // namespace kiln::test
