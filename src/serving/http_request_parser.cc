#include "serving/http_request_parser.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/error.h"
#include "serving/http_fields.h"

namespace kiln::serving {
namespace {

// A chunk-size line is a hex number and optional extensions, which we ignore;
// anything longer is an attack or a broken client.
constexpr size_t kMaxChunkSizeLineBytes = 1024;
// Compact the buffer once this many parsed bytes sit in front of it.
constexpr size_t kCompactThreshold = size_t{64} << 10;

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && http_iequals(text.substr(0, prefix.size()), prefix);
}

bool is_decimal(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses a Content-Length value: decimal digits, or a list of equal values
// ("5, 5", from a proxy that merged fields).
std::optional<size_t> parse_content_length(std::string_view value) {
  std::optional<size_t> length;
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view element = http_trim(value.substr(0, comma));
    if (!is_decimal(element)) return std::nullopt;
    // More digits than size_t holds saturate, so that the body limit refuses them (413).
    size_t parsed = 0;
    for (char c : element) parsed = parsed > SIZE_MAX / 10 - 1 ? SIZE_MAX : parsed * 10 + static_cast<size_t>(c - '0');
    if (length && *length != parsed) return std::nullopt;
    length = parsed;
    if (comma == std::string_view::npos) return length;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

HttpRequestParser::HttpRequestParser(HttpParserLimits limits) : limits_(limits) {}

void HttpRequestParser::append(std::string_view bytes) {
  if (pos_ > 0 && (pos_ == buffer_.size() || pos_ >= kCompactThreshold)) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

bool HttpRequestParser::body_pending() const {
  return phase_ == Phase::body || phase_ == Phase::chunk_size || phase_ == Phase::chunk_data ||
         phase_ == Phase::chunk_data_end || phase_ == Phase::trailers;
}

bool HttpRequestParser::started() const { return phase_ != Phase::request_line || has_buffered_bytes(); }

void HttpRequestParser::next_request() {
  request_ = HttpRequest();
  phase_ = Phase::request_line;
  head_bytes_ = 0;
  body_remaining_ = 0;
  expects_continue_ = false;
  error_status_ = 0;
  error_message_.clear();
}

bool HttpRequestParser::fail(int status, std::string message) {
  phase_ = Phase::failed;
  error_status_ = status;
  error_message_ = std::move(message);
  return false;
}

size_t HttpRequestParser::head_bytes_left() const {
  return head_bytes_ >= limits_.max_header_bytes ? 0 : limits_.max_header_bytes - head_bytes_;
}

bool HttpRequestParser::take_line(std::string_view& line, size_t limit, int over_limit_status, std::string_view what) {
  const size_t newline = buffer_.find('\n', pos_);
  const size_t available = (newline == std::string::npos ? buffer_.size() : newline + 1) - pos_;
  if (available > limit) {
    fail(over_limit_status, concat(what, " exceeds the limit of ", limit, " bytes"));
    return false;
  }
  if (newline == std::string::npos) return false;
  line = std::string_view(buffer_).substr(pos_, newline - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = newline + 1;
  return true;
}

HttpRequestParser::State HttpRequestParser::parse() {
  while (true) {
    std::string_view line;
    switch (phase_) {
      case Phase::request_line: {
        // A long target is the usual way past the head limit: say so (414).
        if (!take_line(line, head_bytes_left(), 414, "the request line")) {
          return phase_ == Phase::failed ? State::failed : State::need_more;
        }
        if (line.empty()) continue;  // RFC 9112 2.2: ignore empty lines before a request
        head_bytes_ += line.size() + 2;
        if (!parse_request_line(line)) return State::failed;
        phase_ = Phase::headers;
        break;
      }
      case Phase::headers: {
        if (!take_line(line, head_bytes_left(), 431, "the request head")) {
          return phase_ == Phase::failed ? State::failed : State::need_more;
        }
        head_bytes_ += line.size() + 2;
        if (line.empty()) return finish_head() ? State::head_complete : State::failed;
        if (!parse_header_line(line)) return State::failed;
        break;
      }
      case Phase::body:
        take_body_bytes();
        if (body_remaining_ > 0) return State::need_more;
        phase_ = Phase::done;
        break;
      case Phase::chunk_size:
        if (!take_line(line, kMaxChunkSizeLineBytes, 400, "a chunk-size line")) {
          return phase_ == Phase::failed ? State::failed : State::need_more;
        }
        if (!parse_chunk_size(line)) return State::failed;
        break;
      case Phase::chunk_data:
        take_body_bytes();
        if (body_remaining_ > 0) return State::need_more;
        phase_ = Phase::chunk_data_end;
        break;
      case Phase::chunk_data_end: {
        // The CRLF (or bare LF) that closes a chunk's data.
        const size_t available = buffer_.size() - pos_;
        if (available == 0 || (buffer_[pos_] == '\r' && available < 2)) return State::need_more;
        const size_t terminator = buffer_[pos_] == '\n' ? 1 : 2;
        if (terminator == 2 && (buffer_[pos_] != '\r' || buffer_[pos_ + 1] != '\n')) {
          fail(400, "chunk data is not followed by CRLF");
          return State::failed;
        }
        pos_ += terminator;
        phase_ = Phase::chunk_size;
        break;
      }
      case Phase::trailers:
        // Trailer fields are read and dropped: nothing we serve uses them.
        if (!take_line(line, head_bytes_left(), 431, "the request head with trailers")) {
          return phase_ == Phase::failed ? State::failed : State::need_more;
        }
        head_bytes_ += line.size() + 2;
        if (line.empty()) phase_ = Phase::done;
        break;
      case Phase::done: return State::complete;
      case Phase::failed: return State::failed;
    }
  }
}

bool HttpRequestParser::parse_request_line(std::string_view line) {
  const size_t first_space = line.find(' ');
  const size_t second_space = first_space == std::string_view::npos ? first_space : line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos || line.find(' ', second_space + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  const std::string_view version = line.substr(second_space + 1);
  if (!http_is_token(method)) return fail(400, "malformed request method");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
      })) {
    return fail(400, "malformed request target");
  }
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) || version[6] != '.' ||
      !is_digit(version[7])) {
    return fail(400, "malformed HTTP version");
  }
  if (version[5] != '1') return fail(505, concat("HTTP version ", version, " is not supported; use HTTP/1.1"));
  // A later 1.x is answered as 1.1 (RFC 9110 2.5).
  request_.minor_version = version[7] == '0' ? 0 : 1;

  // Origin form ("/path?query") is what clients send to a server; absolute form
  // ("http://host/path") is what they send to proxies, accepted as RFC 9112 asks.
  std::string_view path_and_query;
  if (target.front() == '/') {
    path_and_query = target;
  } else if (starts_with_icase(target, "http://") || starts_with_icase(target, "https://")) {
    const size_t authority = target.find("://") + 3;
    const size_t path_start = target.find_first_of("/?", authority);
    path_and_query = path_start == std::string_view::npos ? std::string_view() : target.substr(path_start);
  } else if (target == "*" && method == "OPTIONS") {
    path_and_query = target;
  } else {
    return fail(400, "malformed request target");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  const size_t question = path_and_query.find('?');
  request_.path = std::string(path_and_query.substr(0, question));
  if (request_.path.empty()) request_.path = "/";
  if (question != std::string_view::npos) request_.query = std::string(path_and_query.substr(question + 1));
  return true;
}

bool HttpRequestParser::parse_header_line(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return fail(400, "obsolete line folding in header fields is not supported");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "malformed header field (no colon)");
  const std::string_view name = line.substr(0, colon);
  // Whitespace before the colon is refused (RFC 9112 5.1): proxies disagree on it.
  if (!http_is_token(name)) return fail(400, "malformed header field name");
  const std::string_view value = http_trim(line.substr(colon + 1));
  if (!http_is_field_value(value)) return fail(400, concat("malformed value of header field ", name));
  if (request_.headers.size() >= limits_.max_header_count) {
    return fail(431, concat("more than ", limits_.max_header_count, " header fields"));
  }
  request_.headers.emplace_back(std::string(name), std::string(value));
  return true;
}

bool HttpRequestParser::finish_head() {
  if (request_.minor_version == 1 && !request_.has_header("Host")) return fail(400, "missing Host header");
  std::optional<size_t> content_length;
  bool has_transfer_encoding = false;
  for (const auto& [name, value] : request_.headers) {
    if (http_iequals(name, "Content-Length")) {
      const auto length = parse_content_length(value);
      if (!length || (content_length && *content_length != *length)) return fail(400, "invalid Content-Length");
      content_length = length;
    } else if (http_iequals(name, "Transfer-Encoding")) {
      // Only "chunked" alone: a request body in another coding is not something we decode.
      if (has_transfer_encoding || !http_iequals(http_trim(value), "chunked")) {
        return fail(501, concat("Transfer-Encoding '", value, "' is not supported; only 'chunked' is"));
      }
      has_transfer_encoding = true;
    } else if (http_iequals(name, "Expect")) {
      if (!http_iequals(value, "100-continue")) return fail(417, concat("unsupported expectation '", value, "'"));
      // An HTTP/1.0 client cannot have meant it (RFC 9110 10.1.1).
      expects_continue_ = request_.minor_version == 1;
    }
  }
  // Both framings at once is how requests are smuggled past proxies (RFC 9112 6.1).
  if (has_transfer_encoding && content_length) return fail(400, "both Content-Length and Transfer-Encoding");
  if (has_transfer_encoding && request_.minor_version == 0)
    return fail(400, "Transfer-Encoding in an HTTP/1.0 request");

  if (has_transfer_encoding) {
    phase_ = Phase::chunk_size;
  } else if (content_length && *content_length > 0) {
    if (*content_length > limits_.max_body_bytes) {
      return fail(413, concat("request body of ", *content_length, " bytes exceeds the limit of ",
                              limits_.max_body_bytes, " bytes"));
    }
    body_remaining_ = *content_length;
    request_.body.reserve(*content_length);
    phase_ = Phase::body;
  } else {
    phase_ = Phase::done;
  }
  return true;
}

bool HttpRequestParser::parse_chunk_size(std::string_view line) {
  const std::string_view digits = http_trim(line.substr(0, line.find(';')));
  // 15 hex digits cannot overflow size_t; real chunks are far smaller.
  if (digits.empty() || digits.size() > 15 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      })) {
    return fail(400, "malformed chunk size");
  }
  size_t size = 0;
  for (char c : digits) {
    const int value = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    size = size * 16 + static_cast<size_t>(value);
  }
  if (size == 0) {
    phase_ = Phase::trailers;
    return true;
  }
  if (size > limits_.max_body_bytes - request_.body.size()) {
    return fail(413, concat("chunked request body exceeds the limit of ", limits_.max_body_bytes, " bytes"));
  }
  body_remaining_ = size;
  phase_ = Phase::chunk_data;
  return true;
}

void HttpRequestParser::take_body_bytes() {
  const size_t count = std::min(body_remaining_, buffer_.size() - pos_);
  request_.body.append(buffer_, pos_, count);
  pos_ += count;
  body_remaining_ -= count;
}

}  // namespace kiln::serving
