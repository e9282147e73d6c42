// Streaming responses (JSON lines, server-sent events), clients that leave in
// the middle of a stream, concurrency between streams, and draining on stop().
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_test_support.h"
#include "serving/http_server.h"

namespace kiln::serving {
namespace {

using namespace kiln::serving::testing;

// A one-shot event between a test and a handler thread.
class Event {
 public:
  void notify() {
    std::lock_guard lock(mutex_);
    set_ = true;
    changed_.notify_all();
  }
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return set_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool set_ = false;
};

class HttpStreamingTest : public ::testing::Test {
 protected:
  void start(int threads = 4) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = threads;
    server_ = std::make_unique<HttpServer>(options);
    for (auto& [method, path, handler] : routes_) server_->route(method, path, handler);
    server_->start();
    port_ = server_->port();
  }
  void add_route(std::string path, HttpHandler handler) {
    routes_.push_back({"GET", std::move(path), std::move(handler)});
  }
  void TearDown() override {
    if (server_) server_->stop(2s);
  }

  struct Route {
    std::string method, path;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpStreamingTest, ChunksReachTheClientAsTheyAreWritten) {
  Event first_line_read;
  std::atomic<bool> first_line_seen_before_the_rest{false};
  add_route("/stream", [&](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    response.write_json_line({{"token", 0}});
    // The rest is written only once the client has shown it received the first.
    first_line_seen_before_the_rest = first_line_read.wait_for(3s);
    for (int i = 1; i < 5; ++i) {
      std::this_thread::sleep_for(10ms);
      response.write_json_line({{"token", i}});
    }
    response.end_stream();
  });
  start();
  CurlLineReader reader(url(port_, "/stream"));
  EXPECT_EQ(reader.read_line(), "{\"token\":0}\n");
  first_line_read.notify();
  EXPECT_EQ(reader.read_rest(), "{\"token\":1}\n{\"token\":2}\n{\"token\":3}\n{\"token\":4}\n");
  EXPECT_EQ(reader.close(), 0);
  EXPECT_TRUE(first_line_seen_before_the_rest);
}

TEST_F(HttpStreamingTest, ServerSentEventsAreFramedAndChunked) {
  add_route("/sse", [](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    response.write_event(R"({"a":1})");
    response.write_event("two\nlines", "note");
    response.write_chunk("");  // writes nothing: an empty chunk would end the stream
    response.write_event("[DONE]");
    response.end_stream();
  });
  start();
  const std::string events = "data: {\"a\":1}\n\nevent: note\ndata: two\ndata: lines\n\ndata: [DONE]\n\n";
  const CurlResult curl = run_curl("-N " + url(port_, "/sse"));
  EXPECT_EQ(curl.exit_code, 0);
  EXPECT_EQ(curl.output, events);

  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /sse HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_NE(response.find("Content-Type: text/event-stream\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(response.find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_EQ(response.find("Content-Length"), std::string::npos);
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  EXPECT_EQ(body,
            "f\r\ndata: {\"a\":1}\n\n\r\n"
            "23\r\nevent: note\ndata: two\ndata: lines\n\n\r\n"
            "e\r\ndata: [DONE]\n\n\r\n"
            "0\r\n\r\n");
}

TEST_F(HttpStreamingTest, Http10StreamEndsWithTheConnection) {
  add_route("/lines", [](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    response.write_chunk("one\n");
    response.write_chunk("two\n");
    response.end_stream();
  });
  start();
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /lines HTTP/1.0\r\n\r\n"));
  const std::string response = connection.read_until_closed();
  EXPECT_EQ(response.find("Transfer-Encoding"), std::string::npos) << response;
  EXPECT_NE(response.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), "one\ntwo\n");
}

TEST_F(HttpStreamingTest, ClientThatLeavesMakesWriteChunkFailPromptly) {
  struct Outcome {
    bool write_failed = false;
    bool client_gone = false;
    Clock::time_point failed_at;
  };
  std::promise<Outcome> outcome;
  add_route("/tokens", [&](const HttpRequest&, HttpResponse& response) {
    Outcome result;
    response.start_stream(200, "application/jsonlines");
    for (int i = 0; i < 500 && !result.write_failed; ++i) {  // at most ~5 s
      result.write_failed = !response.write_chunk("tick\n");
      std::this_thread::sleep_for(10ms);
    }
    result.failed_at = Clock::now();
    result.client_gone = response.client_gone();
    outcome.set_value(result);
  });
  start();
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /tokens HTTP/1.1\r\nHost: test\r\n\r\n"));
  EXPECT_NE(connection.read_until("tick\n").find("200 OK"), std::string::npos);
  connection.close();
  const auto closed_at = Clock::now();
  auto future = outcome.get_future();
  ASSERT_EQ(future.wait_for(3s), std::future_status::ready);
  const Outcome result = future.get();
  EXPECT_TRUE(result.write_failed);
  EXPECT_TRUE(result.client_gone);
  EXPECT_LT(result.failed_at - closed_at, 1s);
}

TEST_F(HttpStreamingTest, ClientGoneIsSeenWhileNothingIsWritten) {
  Event handler_started;
  std::promise<bool> noticed;
  add_route("/prefill", [&](const HttpRequest&, HttpResponse& response) {
    handler_started.notify();
    // An engine computing a long prompt: no token yet, so nothing to write.
    bool gone = false;
    for (int i = 0; i < 600 && !gone; ++i) {  // at most ~3 s
      gone = response.client_gone();
      if (!gone) std::this_thread::sleep_for(5ms);
    }
    noticed.set_value(gone);
  });
  start();
  RawConnection connection(port_);
  ASSERT_TRUE(connection.send("GET /prefill HTTP/1.1\r\nHost: test\r\n\r\n"));
  ASSERT_TRUE(handler_started.wait_for(3s));
  connection.close();
  auto future = noticed.get_future();
  ASSERT_EQ(future.wait_for(1s), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

// A client may half-close (shutdown(SHUT_WR)) once its request is sent: it has
// not gone, and gets the whole response, then the close.
TEST_F(HttpStreamingTest, HalfClosedClientGetsTheWholeResponse) {
  add_route("/compute", [](const HttpRequest&, HttpResponse& response) {
    // An engine computing a prompt polls for a client that left, then answers.
    for (int i = 0; i < 40; ++i) {
      if (response.client_gone()) return;
      std::this_thread::sleep_for(5ms);
    }
    response.send(200, "text/plain", "computed");
  });
  add_route("/tokens", [](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(20ms);
      if (!response.write_json_line({{"token", i}})) return;
    }
    response.end_stream();
  });
  start();
  {
    RawConnection connection(port_);
    ASSERT_TRUE(connection.send("GET /compute HTTP/1.1\r\nHost: test\r\n\r\n"));
    ASSERT_TRUE(connection.shutdown_write());
    const std::string response = without_interim_responses(connection.read_until_closed());
    EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
    EXPECT_TRUE(connection.closed_by_peer(1s));  // once answered
    EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), "computed");
  }
  {
    RawConnection connection(port_);
    ASSERT_TRUE(connection.send("GET /tokens HTTP/1.1\r\nHost: test\r\n\r\n"));
    ASSERT_TRUE(connection.shutdown_write());
    const std::string response = without_interim_responses(connection.read_until_closed());
    EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
    EXPECT_EQ(dechunk(response.substr(response.find("\r\n\r\n") + 4)), "{\"token\":0}\n{\"token\":1}\n{\"token\":2}\n")
        << response;
  }
  {
    // HTTP/1.0 clients (printf ... | nc -N) too.
    RawConnection connection(port_);
    ASSERT_TRUE(connection.send("GET /compute HTTP/1.0\r\n\r\n"));
    ASSERT_TRUE(connection.shutdown_write());
    const std::string response = connection.read_until_closed();
    EXPECT_EQ(response.find("HTTP/1.1 200 OK\r\n"), 0u) << response;
    EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), "computed");
  }
}

TEST_F(HttpStreamingTest, AnotherThreadMayWriteTheStream) {
  add_route("/engine", [](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    std::thread engine([&response] {
      for (int i = 0; i < 3; ++i) response.write_json_line({{"step", i}});
    });
    engine.join();
    response.end_stream();
  });
  start();
  EXPECT_EQ(run_curl(url(port_, "/engine")).output, "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n");
}

TEST_F(HttpStreamingTest, HandlerFailingMidStreamTruncatesTheResponse) {
  add_route("/broken", [](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    response.write_chunk("partial\n");
    throw std::runtime_error("engine step failed");
  });
  start();
  const CurlResult result = run_curl(url(port_, "/broken"));
  EXPECT_NE(result.exit_code, 0);  // curl: transfer closed with outstanding read data
  EXPECT_NE(result.output.find("partial\n"), std::string::npos) << result.output;
}

TEST_F(HttpStreamingTest, SlowStreamsDoNotBlockAQuickRequest) {
  Event release;
  add_route("/hold", [&](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    response.write_chunk("held\n");
    release.wait_for(4s);
    response.write_chunk("released\n");
    response.end_stream();
  });
  add_route("/quick", [](const HttpRequest&, HttpResponse& response) { response.send(200, "text/plain", "quick"); });
  start(4);
  std::vector<std::unique_ptr<CurlLineReader>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(std::make_unique<CurlLineReader>(url(port_, "/hold")));
    ASSERT_EQ(streams.back()->read_line(), "held\n");  // its worker is taken now
  }
  const auto begin = Clock::now();
  const CurlResult quick = run_curl(url(port_, "/quick"));
  EXPECT_EQ(quick.output, "quick");
  EXPECT_LT(Clock::now() - begin, 2s);
  release.notify();
  for (auto& stream : streams) {
    EXPECT_EQ(stream->read_rest(), "released\n");
    EXPECT_EQ(stream->close(), 0);
  }
}

TEST_F(HttpStreamingTest, StopDrainsTheRequestInFlightAndRefusesNewConnections) {
  Event entered, release;
  add_route("/slow", [&](const HttpRequest&, HttpResponse& response) {
    entered.notify();
    release.wait_for(4s);
    response.send(200, "text/plain", "done");
  });
  start();
  std::future<CurlResult> client =
      std::async(std::launch::async, [&] { return run_curl("-i " + url(port_, "/slow")); });
  ASSERT_TRUE(entered.wait_for(3s));
  std::atomic<bool> stop_returned{false};
  std::thread stopper([&] {
    server_->stop(5s);
    stop_returned = true;
  });
  bool refused = false;
  for (int attempt = 0; attempt < 200 && !refused; ++attempt) {  // at most ~2 s
    const int fd = connect_to(port_);
    refused = fd == -ECONNREFUSED;
    if (fd >= 0) ::close(fd);
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(stop_returned);  // still draining the request in flight
  release.notify();
  stopper.join();
  const CurlResult result = client.get();
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(result.output.substr(result.output.size() - 4), "done");
}

TEST_F(HttpStreamingTest, StopCancelsStreamsStillRunningAtTheDeadline) {
  std::atomic<bool> write_failed{false};
  add_route("/endless", [&](const HttpRequest&, HttpResponse& response) {
    response.start_stream(200, "application/jsonlines");
    for (int i = 0; i < 1000 && !write_failed; ++i) {  // at most ~10 s
      write_failed = !response.write_chunk("more\n");
      std::this_thread::sleep_for(10ms);
    }
  });
  start();
  CurlLineReader reader(url(port_, "/endless"));
  ASSERT_EQ(reader.read_line(), "more\n");
  const auto begin = Clock::now();
  server_->stop(100ms);
  EXPECT_LT(Clock::now() - begin, 2s);
  EXPECT_TRUE(write_failed);
  reader.read_rest();
  EXPECT_NE(reader.close(), 0);  // the stream was cut, not ended
}

}  // namespace
}  // namespace kiln::serving
