#include "serving/http_request_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::serving {
namespace {

using State = HttpRequestParser::State;

// Feeds `bytes` at once and parses through head_complete to the end.
State parse_all(HttpRequestParser& parser, std::string_view bytes) {
  parser.append(bytes);
  State state = parser.parse();
  if (state == State::head_complete) state = parser.parse();
  return state;
}

TEST(HttpRequestParser, ParsesRequestLineHeadersAndQuery) {
  HttpRequestParser parser;
  ASSERT_EQ(parse_all(parser, "GET /v1/models?name=a%20b&x HTTP/1.1\r\nHost: h\r\nX-Custom:  spaced value \r\n\r\n"),
            State::complete);
  const HttpRequest& request = parser.request();
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/v1/models?name=a%20b&x");
  EXPECT_EQ(request.path, "/v1/models");
  EXPECT_EQ(request.query, "name=a%20b&x");
  EXPECT_EQ(request.minor_version, 1);
  EXPECT_EQ(request.header("x-custom"), "spaced value");
  EXPECT_EQ(request.header("HOST"), "h");
  EXPECT_EQ(request.header("missing"), "");
  EXPECT_EQ(request.query_param("name"), "a b");
  EXPECT_EQ(request.query_param("x"), "");
  EXPECT_EQ(request.query_param("y"), std::nullopt);
  EXPECT_TRUE(request.body.empty());
}

TEST(HttpRequestParser, SameResultWhenFedOneByteAtATime) {
  const std::string bytes =
      "POST /invocations HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
  HttpRequestParser parser;
  int head_completions = 0;
  State state = State::need_more;
  for (char c : bytes) {
    ASSERT_NE(state, State::complete);
    parser.append(std::string_view(&c, 1));
    state = parser.parse();
    if (state == State::head_complete) {
      ++head_completions;
      state = parser.parse();
    }
    ASSERT_NE(state, State::failed) << parser.error_message();
  }
  EXPECT_EQ(state, State::complete);
  EXPECT_EQ(head_completions, 1);
  EXPECT_EQ(parser.request().body, "hello world");
}

TEST(HttpRequestParser, ContentLengthBodyAcrossAppends) {
  HttpRequestParser parser;
  parser.append("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123");
  EXPECT_EQ(parser.parse(), State::head_complete);
  EXPECT_TRUE(parser.body_pending());
  EXPECT_EQ(parser.parse(), State::need_more);
  parser.append("456789");
  EXPECT_EQ(parser.parse(), State::complete);
  EXPECT_EQ(parser.request().body, "0123456789");
  EXPECT_FALSE(parser.has_buffered_bytes());
}

TEST(HttpRequestParser, ReportsExpectContinueAtHeadComplete) {
  HttpRequestParser parser;
  parser.append("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
  EXPECT_EQ(parser.parse(), State::head_complete);
  EXPECT_TRUE(parser.expects_continue());
  EXPECT_TRUE(parser.body_pending());
  EXPECT_EQ(parser.parse(), State::need_more);
  parser.append("abc");
  EXPECT_EQ(parser.parse(), State::complete);
}

TEST(HttpRequestParser, KeepsPipelinedRequests) {
  HttpRequestParser parser;
  ASSERT_EQ(
      parse_all(parser, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
      State::complete);
  EXPECT_EQ(parser.request().path, "/a");
  EXPECT_EQ(parser.request().body, "hi");
  EXPECT_TRUE(parser.has_buffered_bytes());
  parser.next_request();
  ASSERT_EQ(parse_all(parser, ""), State::complete);
  EXPECT_EQ(parser.request().path, "/b");
  EXPECT_FALSE(parser.has_buffered_bytes());
}

TEST(HttpRequestParser, AcceptsBareLineFeedsLeadingBlankLinesAndAbsoluteForm) {
  HttpRequestParser parser;
  ASSERT_EQ(parse_all(parser, "\r\n\nGET http://example.com:8080/ping?q=1 HTTP/1.1\nHost: h\n\n"), State::complete);
  EXPECT_EQ(parser.request().path, "/ping");
  EXPECT_EQ(parser.request().query, "q=1");
}

TEST(HttpRequestParser, Http10NeedsNoHostAndIgnoresExpect) {
  HttpRequestParser parser;
  ASSERT_EQ(parse_all(parser, "POST /x HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nz"),
            State::complete);
  EXPECT_EQ(parser.request().minor_version, 0);
  EXPECT_FALSE(parser.expects_continue());
}

TEST(HttpRequestParser, StartedOnlyOnceRequestBytesArrive) {
  HttpRequestParser parser;
  EXPECT_FALSE(parser.started());
  parser.append("GE");
  EXPECT_EQ(parser.parse(), State::need_more);
  EXPECT_TRUE(parser.started());
}

struct RefusalCase {
  const char* name;
  std::string bytes;
  int status;
};

class HttpRequestParserRefusal : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(HttpRequestParserRefusal, AnswersWithStatus) {
  HttpParserLimits limits;
  limits.max_header_bytes = 256;
  limits.max_header_count = 4;
  limits.max_body_bytes = 8;
  HttpRequestParser parser(limits);
  EXPECT_EQ(parse_all(parser, GetParam().bytes), State::failed);
  EXPECT_EQ(parser.error_status(), GetParam().status) << parser.error_message();
  EXPECT_FALSE(parser.error_message().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HttpRequestParserRefusal,
    ::testing::Values(
        RefusalCase{"Garbage", "GARBAGE\r\n\r\n", 400},
        RefusalCase{"TwoSpaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        RefusalCase{"BadTarget", "GET nothing HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        RefusalCase{"BadVersion", "GET / HTTQ/1.1\r\nHost: h\r\n\r\n", 400},
        RefusalCase{"Http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        RefusalCase{"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
        RefusalCase{"NoColon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
        RefusalCase{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        RefusalCase{"ObsoleteFolding", "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400},
        RefusalCase{"ControlInValue", std::string("GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n"), 400},
        RefusalCase{"BadContentLength", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
        RefusalCase{"NegativeContentLength", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        RefusalCase{"ConflictingContentLength",
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        RefusalCase{"BothFramings",
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        RefusalCase{"UnsupportedCoding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        RefusalCase{"UnknownExpectation", "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
        RefusalCase{"BodyTooLarge", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n", 413},
        RefusalCase{"HugeContentLength",
                    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
        RefusalCase{"ChunkedBodyTooLarge",
                    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n", 413},
        RefusalCase{"BadChunkSize", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        RefusalCase{"ChunkWithoutCrlf", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
                    400},
        RefusalCase{"TooManyHeaders", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431},
        RefusalCase{"HeadTooLarge", "GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(300, 'a') + "\r\n\r\n", 431},
        RefusalCase{"HeadTooLargeWithoutEnd", "GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(300, 'a'), 431},
        RefusalCase{"TargetTooLong", "GET /" + std::string(300, 'a') + " HTTP/1.1\r\n", 414}),
    [](const ::testing::TestParamInfo<RefusalCase>& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace kiln::serving
