// HttpRequestParser: an incremental HTTP/1.x request parser. Bytes go in as
// they arrive from the socket; the parser says when the head is complete (the
// moment to answer `Expect: 100-continue`), when the whole request is, or why
// the request is refused (the 4xx/5xx status to answer with). It never reads
// ahead of what a limit allows, so a hostile client costs at most the limits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "serving/http_request.h"

namespace kiln::serving {

struct HttpParserLimits {
  size_t max_header_bytes = size_t{64} << 10;  // request line + header fields (and chunked trailers)
  size_t max_header_count = 128;
  size_t max_body_bytes = size_t{16} << 20;  // after de-chunking
};

class HttpRequestParser {
 public:
  enum class State {
    need_more,      // append more bytes, then parse() again
    head_complete,  // once per request: head parsed, body (if any) not yet; parse() again to go on
    complete,       // request() holds the whole request
    failed,         // error_status() and error_message() say why; the connection cannot be reused
  };

  explicit HttpRequestParser(HttpParserLimits limits = {});

  // Adds bytes received from the peer.
  void append(std::string_view bytes);
  // Parses as far as the buffered bytes allow.
  State parse();

  HttpRequest& request() { return request_; }
  const HttpRequest& request() const { return request_; }
  // After head_complete: the client asked to be told before it sends the body.
  bool expects_continue() const { return expects_continue_; }
  // After head_complete: a body is still to be read.
  bool body_pending() const;
  // Part of a request has arrived (so a timeout now means a slow client, not an idle one).
  bool started() const;
  // Bytes past the current request are buffered (a pipelined request).
  bool has_buffered_bytes() const { return pos_ < buffer_.size(); }

  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

  // Starts the next request on the same connection, keeping buffered bytes.
  void next_request();

 private:
  enum class Phase { request_line, headers, body, chunk_size, chunk_data, chunk_data_end, trailers, done, failed };

  // Takes the next line (without its CR LF or bare LF) if one is complete.
  // `limit` bounds its length; past it the parse fails with `over_limit_status`.
  bool take_line(std::string_view& line, size_t limit, int over_limit_status, std::string_view what);
  bool parse_request_line(std::string_view line);
  bool parse_header_line(std::string_view line);
  bool finish_head();
  bool parse_chunk_size(std::string_view line);
  void take_body_bytes();
  bool fail(int status, std::string message);
  size_t head_bytes_left() const;

  HttpParserLimits limits_;
  std::string buffer_;  // received bytes; [pos_, size) not yet parsed
  size_t pos_ = 0;
  Phase phase_ = Phase::request_line;
  HttpRequest request_;
  size_t head_bytes_ = 0;      // of this request's head (and trailers) so far
  size_t body_remaining_ = 0;  // of the Content-Length body or of the current chunk
  bool expects_continue_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace kiln::serving
