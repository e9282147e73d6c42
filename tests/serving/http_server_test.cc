// The server end to end through the real curl binary: what real clients send.
#include "serving/http_server.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "http_test_support.h"

namespace kiln::serving {
namespace {

using namespace kiln::serving::testing;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 4;
    server_ = std::make_unique<HttpServer>(options);
    server_->route("GET", "/info", [](const HttpRequest& request, HttpResponse& response) {
      response.send_json(200, {{"method", request.method},
                               {"path", request.path},
                               {"query", request.query},
                               {"name", request.query_param("name").value_or("?")},
                               {"x_test", request.header("x-test")}});
    });
    for (const char* method : {"POST", "PUT"}) {
      server_->route(method, "/echo", [](const HttpRequest& request, HttpResponse& response) {
        response.send(200, "application/octet-stream", request.body,
                      {{"X-Body-Size", std::to_string(request.body.size())}});
      });
    }
    server_->route("GET", "/peer", [](const HttpRequest& request, HttpResponse& response) {
      response.send(200, "text/plain", request.remote_address + "\n");
    });
    server_->route("GET", "/throw", [](const HttpRequest&, HttpResponse&) { throw Error("the model exploded"); });
    server_->route("GET", "/silent", [](const HttpRequest&, HttpResponse&) {});
    server_->route("GET", "/busy", [](const HttpRequest&, HttpResponse& response) {
      response.send_json(429, {{"error", "slow down"}}, {{"Retry-After", "7"}});
    });
    server_->route_prefix("GET", "/predictions/", [](const HttpRequest& request, HttpResponse& response) {
      response.send(200, "text/plain", "model " + request.path.substr(13));
    });
    server_->start();
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->stop(2s);
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, GetAnswersJsonWithQueryAndHeaders) {
  start();
  ASSERT_GT(port_, 0);
  const CurlResult result = run_curl("-H 'X-Test: yes' '" + url(port_, "/info?name=a%20b&z=1") + "'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto body = nlohmann::json::parse(result.output);
  EXPECT_EQ(body["method"], "GET");
  EXPECT_EQ(body["path"], "/info");
  EXPECT_EQ(body["query"], "name=a%20b&z=1");
  EXPECT_EQ(body["name"], "a b");
  EXPECT_EQ(body["x_test"], "yes");
}

TEST_F(HttpServerTest, PostBinaryBodyIsReceivedWhole) {
  start();
  const std::string payload = binary_payload(300000);
  const std::string file = write_temp_file("http_post_body.bin", payload);
  const CurlResult result = run_curl("--data-binary @" + file + " " + url(port_, "/echo"));
  ASSERT_EQ(result.exit_code, 0) << result.output.substr(0, 200);
  EXPECT_TRUE(result.output == payload) << "echoed " << result.output.size() << " bytes";
}

TEST_F(HttpServerTest, ChunkedRequestBodyIsDecoded) {
  start();
  const std::string payload = binary_payload(100000);
  const std::string file = write_temp_file("http_chunked_body.bin", payload);
  const CurlResult result =
      run_curl("-X PUT -H 'Transfer-Encoding: chunked' --data-binary @" + file + " " + url(port_, "/echo"));
  ASSERT_EQ(result.exit_code, 0) << result.output.substr(0, 200);
  EXPECT_TRUE(result.output == payload) << "echoed " << result.output.size() << " bytes";
}

TEST_F(HttpServerTest, KeepAliveCarriesSeveralRequestsOnOneConnection) {
  start();
  const std::string peer = url(port_, "/peer");
  const CurlResult result = run_curl(peer + " " + peer + " " + peer);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const size_t first_end = result.output.find('\n');
  ASSERT_NE(first_end, std::string::npos);
  const std::string first = result.output.substr(0, first_end + 1);
  EXPECT_EQ(result.output, first + first + first);  // the same client port three times
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredAtOnce) {
  start();
  const std::string file = write_temp_file("http_expect_body.txt", "expected body");
  const auto begin = Clock::now();
  // Without a 100 Continue, curl would wait the 3 s before sending the body.
  const CurlResult result =
      run_curl("--expect100-timeout 3 -H 'Expect: 100-continue' --data-binary @" + file + " " + url(port_, "/echo"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "expected body");
  EXPECT_LT(Clock::now() - begin, 2s);
}

TEST_F(HttpServerTest, UnroutedPathIs404Json) {
  start();
  const CurlResult result = run_curl("-w '\\n%{http_code}' " + url(port_, "/nowhere"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const size_t split = result.output.rfind('\n');
  EXPECT_EQ(result.output.substr(split + 1), "404");
  const auto body = nlohmann::json::parse(result.output.substr(0, split));
  EXPECT_EQ(body["code"], 404);
  EXPECT_EQ(body["error"], "no route for GET /nowhere");
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllowHeader) {
  start();
  const CurlResult result = run_curl("-i -X DELETE " + url(port_, "/echo"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("HTTP/1.1 405 Method Not Allowed\r\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Allow: POST, PUT\r\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("\"error\":\"method DELETE is not allowed for /echo\""), std::string::npos);
}

TEST_F(HttpServerTest, OversizeBodyIs413WithEitherFraming) {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  start(options);
  const std::string file = write_temp_file("http_oversize.bin", binary_payload(4096));
  for (const std::string framing : {"", "-H 'Transfer-Encoding: chunked' "}) {
    const CurlResult result =
        run_curl("-o /dev/null -w '%{http_code}' " + framing + "--data-binary @" + file + " " + url(port_, "/echo"));
    EXPECT_EQ(result.output, "413") << framing;
  }
  const CurlResult small = run_curl("--data-binary 'fits' " + url(port_, "/echo"));
  EXPECT_EQ(small.output, "fits");
}

TEST_F(HttpServerTest, HeadGetsTheHeadersOfGetWithoutBody) {
  start();
  const CurlResult result = run_curl("-I " + url(port_, "/peer"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output.find("HTTP/1.1 200 OK\r\n"), 0u) << result.output;
  EXPECT_NE(result.output.find("Content-Length: "), std::string::npos);
  EXPECT_EQ(result.output.substr(result.output.size() - 4), "\r\n\r\n");  // nothing after the head
}

TEST_F(HttpServerTest, HandlerFailuresAre500Json) {
  start();
  const CurlResult thrown = run_curl("-w ' %{http_code}' " + url(port_, "/throw"));
  EXPECT_EQ(thrown.output, R"({"code":500,"error":"the model exploded"} 500)");
  const CurlResult silent = run_curl("-w ' %{http_code}' " + url(port_, "/silent"));
  EXPECT_EQ(silent.output, R"({"code":500,"error":"the handler sent no response"} 500)");
}

TEST_F(HttpServerTest, HandlersSetStatusAndHeaders) {
  start();
  const CurlResult result = run_curl("-i " + url(port_, "/busy"));
  EXPECT_NE(result.output.find("HTTP/1.1 429 Too Many Requests\r\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Retry-After: 7\r\n"), std::string::npos);
  EXPECT_NE(result.output.find("Content-Type: application/json\r\n"), std::string::npos);
}

TEST_F(HttpServerTest, PrefixRouteServesEveryPathBelowIt) {
  start();
  EXPECT_EQ(run_curl(url(port_, "/predictions/llama")).output, "model llama");
  EXPECT_EQ(run_curl(url(port_, "/predictions/other")).output, "model other");
}

TEST_F(HttpServerTest, StartOnABusyPortNamesTheAddress) {
  start();
  HttpServerOptions options;
  options.port = port_;
  HttpServer second(options);
  try {
    second.start();
    FAIL() << "a second server bound the same port";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos) << message;
    EXPECT_NE(message.find("in use"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace kiln::serving
