// The server against raw sockets: malformed, partial, pipelined and slow
// requests that real clients rarely send, and the connection lifecycle.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_test_support.h"
#include "serving/http_server.h"

namespace kiln::serving {
namespace {

using namespace kiln::serving::testing;

class HttpProtocolTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options);
    server_->route("POST", "/echo", [](const HttpRequest& request, HttpResponse& response) {
      response.send(200, "text/plain", request.body);
    });
    server_->route("GET", "/peer", [](const HttpRequest& request, HttpResponse& response) {
      response.send(200, "text/plain", request.remote_address);
    });
    server_->start();
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->stop(2s);
  }
  static HttpServerOptions small_limits() {
    HttpServerOptions options;
    options.threads = 2;
    options.max_body_bytes = 1024;
    options.max_header_bytes = 1024;
    return options;
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

constexpr std::string_view kGetPeer = "GET /peer HTTP/1.1\r\nHost: test\r\n\r\n";

// Connections that send their requests a byte at a time, all from one thread:
// `heads` trickle their request head, `bodies` send a whole head at once and
// then trickle the body.
class SlowClients {
 public:
  SlowClients(int port, int heads, int bodies, std::chrono::milliseconds interval) {
    for (int i = 0; i < heads + bodies; ++i) {
      Client client{connect_to(port), {}, 0};
      if (client.fd < 0) continue;
      if (i < heads) {
        client.pending = "GET /peer HTTP/1.1\r\nHost: test\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n";
      } else {
        const std::string head = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 500\r\n\r\n";
        ::send(client.fd, head.data(), head.size(), MSG_NOSIGNAL);
        client.pending = std::string(500, 'b');
      }
      clients_.push_back(std::move(client));
    }
    thread_ = std::thread([this, interval] {
      while (!stop_.load()) {
        for (Client& client : clients_) {
          if (client.sent < client.pending.size() &&
              ::send(client.fd, client.pending.data() + client.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            ++client.sent;
          }
        }
        std::this_thread::sleep_for(interval);
      }
    });
  }
  ~SlowClients() {
    stop_.store(true);
    thread_.join();
    for (Client& client : clients_) ::close(client.fd);
  }
  size_t connected() const { return clients_.size(); }

 private:
  struct Client {
    int fd;
    std::string pending;
    size_t sent;
  };
  std::vector<Client> clients_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Whether `connection` is answered 200 for GET /peer within `timeout`.
bool peer_answers(RawConnection& connection, std::chrono::milliseconds timeout = 3s) {
  return connection.send(kGetPeer) && connection.read_response(timeout).find("200 OK") != std::string::npos;
}

// `n` connections to `port`, each answered once and kept alive.
std::vector<std::unique_ptr<RawConnection>> kept_alive_connections(int port, int n) {
  std::vector<std::unique_ptr<RawConnection>> open;
  for (int i = 0; i < n; ++i) {
    open.push_back(std::make_unique<RawConnection>(port));
    if (!peer_answers(*open.back())) ADD_FAILURE() << "connection " << i << " got no 200 for /peer";
  }
  return open;
}

// The time a normal request on a fresh connection takes to be answered (an hour when it is not).
std::chrono::microseconds timed_request(int port) {
  const auto begin = Clock::now();
  RawConnection connection(port);
  if (!peer_answers(connection)) return 1h;
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin);
}

TEST_F(HttpProtocolTest, MalformedRequestIs400AndClosesTheConnection) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GARBAGE\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_EQ(response.find("HTTP/1.1 400 Bad Request\r\n"), 0u) << response;
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(response.find(R"({"code":400,"error":"malformed request line"})"), std::string::npos) << response;
}

TEST_F(HttpProtocolTest, OversizeHeadIs431) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /peer HTTP/1.1\r\nHost: test\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_EQ(response.find("HTTP/1.1 431 Request Header Fields Too Large\r\n"), 0u) << response;
}

TEST_F(HttpProtocolTest, UnsupportedTransferCodingIs501) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n"));
  EXPECT_EQ(connection.read_until_closed().find("HTTP/1.1 501 Not Implemented\r\n"), 0u);
}

TEST_F(HttpProtocolTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(
      connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(connection.read_until("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(connection.send("hello"));
  const std::string response = connection.read_response();
  EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
  EXPECT_EQ(response.substr(response.size() - 5), "hello");
}

TEST_F(HttpProtocolTest, ExpectContinueWithOversizeBodyIs413Without100) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(
      connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_EQ(response.find("HTTP/1.1 413 Content Too Large\r\n"), 0u) << response;
  EXPECT_NE(response.find("request body of 5000 bytes exceeds the limit of 1024 bytes"), std::string::npos);
}

TEST_F(HttpProtocolTest, OversizeBodySentAnywayStillGets413) {
  start(small_limits());
  RawConnection connection(port_);
  // The body is in flight when the server refuses: the refusal must survive the close.
  ASSERT_TRUE(connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 200000\r\n\r\n" +
                              std::string(200000, 'b')));
  EXPECT_EQ(connection.read_until_closed().find("HTTP/1.1 413 Content Too Large\r\n"), 0u);
}

TEST_F(HttpProtocolTest, ChunkedBodyWithExtensionsAndTrailers) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(
      connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4;name=value\r\nkiln\r\n1\r\n \r\nA\r\nis serving\r\n0\r\nX-Trailer: ignored\r\n\r\n"));
  const std::string response = connection.read_response();
  EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
  EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), "kiln is serving");
}

TEST_F(HttpProtocolTest, PipelinedRequestsAreAnsweredInOrder) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(
      connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nfirst"
                      "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nsecond"));
  const std::string first = connection.read_response();
  const std::string second = connection.read_response();
  EXPECT_EQ(first.substr(first.size() - 5), "first") << first;
  EXPECT_EQ(second.substr(second.size() - 6), "second") << second;
}

TEST_F(HttpProtocolTest, PipelinedRequestsBeforeAHalfCloseAreAllAnswered) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(
      connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nfirst"
                      "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nsecond"));
  ASSERT_TRUE(connection.shutdown_write());
  const std::string first = connection.read_response();
  const std::string second = connection.read_response();
  EXPECT_EQ(first.substr(first.size() - 5), "first") << first;
  EXPECT_EQ(second.substr(second.size() - 6), "second") << second;
  EXPECT_TRUE(connection.closed_by_peer(1s));
}

TEST_F(HttpProtocolTest, Http10ClosesUnlessAskedToKeepAlive) {
  start(small_limits());
  {
    RawConnection connection(port_);
    ASSERT_TRUE(connection.send("GET /peer HTTP/1.0\r\n\r\n"));
    const std::string response = connection.read_until_closed();
    EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
    EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
  }
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /peer HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_NE(connection.read_response().find("Connection: keep-alive\r\n"), std::string::npos);
  ASSERT_TRUE(connection.send("GET /peer HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(connection.read_until_closed().find("HTTP/1.1 200 OK\r\n"), 0u);
}

TEST_F(HttpProtocolTest, ConnectionCloseIsHonoured) {
  start(small_limits());
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /peer HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos) << response;
  EXPECT_TRUE(connection.closed_by_peer(1s));
}

TEST_F(HttpProtocolTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  HttpServerOptions options = small_limits();
  options.idle_timeout = 200ms;
  start(options);
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send(kGetPeer));
  EXPECT_NE(connection.read_response().find("200 OK"), std::string::npos);
  const auto begin = Clock::now();
  EXPECT_TRUE(connection.closed_by_peer(3s));
  EXPECT_GE(Clock::now() - begin, 150ms);
}

TEST_F(HttpProtocolTest, SlowRequestIs408) {
  HttpServerOptions options = small_limits();
  options.header_timeout = 300ms;
  start(options);
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /peer HTTP/1.1\r\nHo"));
  const std::string response = connection.read_until_closed(3s);
  EXPECT_EQ(response.find("HTTP/1.1 408 Request Timeout\r\n"), 0u) << response;
}

// Sends `data` a byte every `interval` until the server closes the connection
// or all is sent; what the server answered.
std::string trickle(RawConnection& connection, std::string_view data, std::chrono::milliseconds interval) {
  for (char byte : data) {
    if (!connection.send(std::string_view(&byte, 1)) || connection.receive_some(interval)) break;
  }
  return connection.read_until_closed(3s);
}

TEST_F(HttpProtocolTest, HeadTrickledPastTheHeaderDeadlineIs408) {
  HttpServerOptions options = small_limits();
  options.header_timeout = 300ms;
  start(options);
  RawConnection connection(port_);
  const auto begin = Clock::now();
  // Bytes keep coming, but the head is not done at the deadline.
  const std::string response =
      trickle(connection, "GET /peer HTTP/1.1\r\nHost: test\r\nX-Slow: " + std::string(100, 's'), 20ms);
  EXPECT_EQ(response.find("HTTP/1.1 408 Request Timeout\r\n"), 0u) << response;
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
  EXPECT_GE(Clock::now() - begin, 250ms);
  EXPECT_LT(Clock::now() - begin, 2s);
}

TEST_F(HttpProtocolTest, BodyTrickledPastTheBodyDeadlineIs408) {
  HttpServerOptions options = small_limits();
  options.header_timeout = 5s;
  options.body_timeout = 300ms;
  start(options);
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n"));
  const auto begin = Clock::now();
  const std::string response = trickle(connection, std::string(100, 'b'), 20ms);
  EXPECT_EQ(response.find("HTTP/1.1 408 Request Timeout\r\n"), 0u) << response;
  EXPECT_GE(Clock::now() - begin, 250ms);
  EXPECT_LT(Clock::now() - begin, 2s);
}

TEST_F(HttpProtocolTest, NewConnectionThatSendsNothingIsClosedAtTheHeaderDeadline) {
  HttpServerOptions options = small_limits();
  options.header_timeout = 200ms;
  start(options);
  RawConnection connection(port_);
  const auto begin = Clock::now();
  EXPECT_TRUE(connection.closed_by_peer(3s));
  EXPECT_GE(Clock::now() - begin, 150ms);
  EXPECT_EQ(connection.read_until_closed(), "");  // no 408: no request had begun
}

TEST_F(HttpProtocolTest, SlowBodyAfter100ContinueIsReceivedWhole) {
  HttpServerOptions options = small_limits();
  options.threads = 1;
  start(options);
  RawConnection slow(port_);
  ASSERT_TRUE(slow.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(slow.read_until("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  for (char byte : std::string("slow body!")) {
    ASSERT_TRUE(slow.send(std::string_view(&byte, 1)));
    // The only worker stays free while the body trickles in.
    const CurlResult quick = run_curl(url(port_, "/peer"));
    ASSERT_EQ(quick.exit_code, 0) << quick.output;
  }
  const std::string response = slow.read_response();
  EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
  EXPECT_EQ(response.substr(response.size() - 10), "slow body!");
}

TEST_F(HttpProtocolTest, IdleKeepAliveConnectionsHoldNoWorker) {
  HttpServerOptions options = small_limits();
  options.threads = 1;
  start(options);
  auto idle = kept_alive_connections(port_, 4);
  ASSERT_FALSE(HasFailure());
  // The single worker is free although four connections stay open.
  const CurlResult result = run_curl(url(port_, "/peer"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  for (auto& connection : idle) EXPECT_TRUE(peer_answers(*connection));
}

TEST_F(HttpProtocolTest, SlowClientsHoldNoWorker) {
  HttpServerOptions options = small_limits();  // two workers
  options.max_connections_per_address = 0;     // they all come from 127.0.0.1
  start(options);
  std::chrono::microseconds alone{0};
  for (int i = 0; i < 3; ++i) alone = std::max(alone, timed_request(port_));
  ASSERT_LT(alone, 1s);
  // 200 connections sending a byte every 20 ms, 50 of them trickling a body.
  SlowClients slow(port_, 150, 50, 20ms);
  ASSERT_EQ(slow.connected(), 200u);
  std::this_thread::sleep_for(300ms);  // every slow connection has begun its request
  std::chrono::microseconds crowded{0};
  for (int i = 0; i < 5; ++i) crowded = std::max(crowded, timed_request(port_));
  std::cout << "normal request: " << alone.count() << " us alone, " << crowded.count()
            << " us beside 200 slow clients\n";
  // As fast as without them, give or take a loaded machine.
  EXPECT_LT(crowded, 1s);
}

TEST_F(HttpProtocolTest, ConnectionsBeyondThePerAddressCapGet429) {
  HttpServerOptions options = small_limits();
  options.max_connections_per_address = 3;
  start(options);
  auto open = kept_alive_connections(port_, 3);
  ASSERT_FALSE(HasFailure());
  // The fourth from 127.0.0.1 is refused, its request read and dropped.
  RawConnection fourth(port_);
  ASSERT_TRUE(fourth.send(kGetPeer));
  const std::string refusal = fourth.read_until_closed();
  EXPECT_EQ(refusal.find("HTTP/1.1 429 Too Many Requests\r\n"), 0u) << refusal;
  EXPECT_NE(refusal.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(refusal.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(refusal.find("at most 3 per client address"), std::string::npos) << refusal;

  // The three still work; once one closes, a new one is served again.
  for (auto& connection : open) EXPECT_TRUE(peer_answers(*connection));
  open.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    RawConnection next(port_);
    served = peer_answers(next, 1s);
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpProtocolTest, ConnectionsBeyondTheLimitGet503) {
  HttpServerOptions options = small_limits();
  options.max_connections = 2;
  start(options);
  auto first = std::make_unique<RawConnection>(port_);
  RawConnection second(port_);
  ASSERT_TRUE(first->send(kGetPeer));
  ASSERT_NE(first->read_response().find("200 OK"), std::string::npos);
  ASSERT_TRUE(second.send(kGetPeer));
  ASSERT_NE(second.read_response().find("200 OK"), std::string::npos);
  RawConnection third(port_);
  const std::string refusal = third.read_until_closed();
  EXPECT_EQ(refusal.find("HTTP/1.1 503 Service Unavailable\r\n"), 0u) << refusal;
  EXPECT_NE(refusal.find("Retry-After: 1\r\n"), std::string::npos);

  // Once a connection closes, a new one is served again.
  first.reset();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    RawConnection next(port_);
    served = peer_answers(next, 1s);
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace kiln::serving
