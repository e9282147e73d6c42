#include "serving/http_connection.h"

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

#include "core/log.h"
#include "serving/http_fields.h"
#include "serving/http_response.h"

namespace kiln::serving {
namespace {

// How long a refused connection's remaining input is read and dropped before
// the close, so that the refusal reaches the client: closing a socket with
// unread input makes the kernel send a reset, which can destroy a response
// written just before (e.g. a 413 while the client is still sending the body).
constexpr std::chrono::milliseconds kRefusalDrainTime{1000};
// The most one read_available() call reads, so that a fast upload cannot keep
// the event loop from its other connections (it is called again while more waits).
constexpr size_t kReadBudget = size_t{256} << 10;

bool client_wants_keep_alive(const HttpRequest& request) {
  const std::string connection = request.header("Connection");
  if (request.minor_version == 0) return http_header_has_token(connection, "keep-alive");
  return !http_header_has_token(connection, "close");
}

}  // namespace

HttpConnection::HttpConnection(int fd, std::string remote_address, const HttpConnectionSettings& settings,
                               std::function<void()> on_close)
    : socket_(fd),
      remote_address_(std::move(remote_address)),
      settings_(settings),
      on_close_(std::move(on_close)),
      parser_(settings.limits),
      deadline_(Clock::now() + settings.header_timeout) {}

HttpConnection::~HttpConnection() {
  if (on_close_) on_close_();
}

void HttpConnection::wait_for(Wait wait, std::chrono::milliseconds timeout) {
  wait_ = wait;
  deadline_ = Clock::now() + timeout;
}

HttpConnection::Progress HttpConnection::read_available() {
  if (wait_ == Wait::drain) return drain_available();
  std::array<char, 16384> buffer;
  size_t budget = kReadBudget;
  while (true) {
    const Progress progress = parse_buffered();
    // Output waiting to leave goes first (a client may wait for its 100 Continue).
    if (progress != Progress::waiting || wait_ == Wait::drain || budget == 0 || has_pending_output()) {
      return progress;
    }
    const HttpSocket::ReadResult read = socket_.try_read(buffer.data(), std::min(buffer.size(), budget));
    switch (read.status) {
      case HttpSocket::ReadStatus::data:
        parser_.append(std::string_view(buffer.data(), read.bytes));
        budget -= read.bytes;
        break;
      case HttpSocket::ReadStatus::would_block: return Progress::waiting;
      // The client finished sending before its request was whole (a whole one
      // would have been parsed above): nothing more can come.
      case HttpSocket::ReadStatus::closed:
      case HttpSocket::ReadStatus::failed: return Progress::closed;
    }
  }
}

HttpConnection::Progress HttpConnection::parse_buffered() {
  if (wait_ == Wait::drain) return Progress::waiting;
  while (true) {
    switch (parser_.parse()) {
      case HttpRequestParser::State::complete:
        // A 100 Continue not yet sent: unneeded now, the body is in. One half
        // sent must be finished before the response can follow it.
        if (output_sent_ == 0) output_.clear();
        if (has_pending_output()) return Progress::waiting;
        deadline_ = Clock::time_point::max();  // a worker's now
        return Progress::request_ready;
      case HttpRequestParser::State::failed: return refuse(parser_.error_status(), parser_.error_message());
      case HttpRequestParser::State::head_complete:
        if (parser_.body_pending()) {
          wait_for(Wait::body, settings_.body_timeout);
          if (parser_.expects_continue()) {
            output_.append("HTTP/1.1 100 Continue\r\n\r\n");
            if (!write_pending()) return Progress::closed;
          }
        }
        continue;
      case HttpRequestParser::State::need_more:
        // The first byte of a request on a kept-alive connection starts its head's deadline.
        if (wait_ == Wait::idle && parser_.started()) wait_for(Wait::head, settings_.header_timeout);
        return Progress::waiting;
    }
  }
}

bool HttpConnection::write_pending() {
  if (!has_pending_output()) return true;
  const long sent = socket_.try_write(std::string_view(output_).substr(output_sent_));
  if (sent < 0) return false;
  output_sent_ += static_cast<size_t>(sent);
  if (has_pending_output()) return true;
  output_.clear();
  output_sent_ = 0;
  // A refusal is the last thing sent: say so, and read what still comes until the client closes.
  if (wait_ == Wait::drain) socket_.shutdown_write();
  return true;
}

HttpConnection::Progress HttpConnection::flush_output() {
  if (!write_pending()) return Progress::closed;
  if (has_pending_output() || wait_ == Wait::drain) return Progress::waiting;
  return parse_buffered();  // the request may have waited for its 100 Continue to leave
}

HttpConnection::Progress HttpConnection::refuse(int status, std::string_view message,
                                                const HttpHeaders& extra_headers) {
  wait_for(Wait::drain, kRefusalDrainTime);
  // A 100 Continue not begun is dropped; one half sent must be finished first.
  if (output_sent_ == 0) output_.clear();
  output_.append(http_error_response(status, message, extra_headers));
  return write_pending() ? Progress::waiting : Progress::closed;
}

HttpConnection::Progress HttpConnection::reject(int status, std::string_view message,
                                                const HttpHeaders& extra_headers) {
  return refuse(status, message, extra_headers);
}

HttpConnection::Progress HttpConnection::drain_available() {
  std::array<char, 16384> discard;
  for (size_t budget = kReadBudget; budget > 0;) {
    const HttpSocket::ReadResult read = socket_.try_read(discard.data(), discard.size());
    if (read.status != HttpSocket::ReadStatus::data) {
      return read.status == HttpSocket::ReadStatus::would_block ? Progress::waiting : Progress::closed;
    }
    budget -= std::min(budget, read.bytes);
  }
  return Progress::waiting;
}

HttpConnection::Progress HttpConnection::expire() {
  // Nothing of a request yet: an idle client, closed without a word.
  if (wait_ == Wait::drain || !parser_.started()) return Progress::closed;
  return refuse(408, "the request did not arrive in time");
}

HttpConnection::Next HttpConnection::serve(const HttpRouter& router, const std::atomic<bool>& server_stopping) {
  const bool keep_alive = respond(router, server_stopping);
  parser_.next_request();
  wait_for(Wait::idle, settings_.idle_timeout);
  if (!keep_alive || server_stopping.load()) return Next::close;
  return Next::wait_for_request;
}

bool HttpConnection::respond(const HttpRouter& router, const std::atomic<bool>& server_stopping) {
  HttpRequest& request = parser_.request();
  request.remote_address = remote_address_;
  HttpResponseSettings settings;
  settings.head_only = request.method == "HEAD";
  // A client that has finished sending (a half-close) gets its response (and
  // those of requests it pipelined before), then the close.
  settings.keep_alive =
      client_wants_keep_alive(request) && (parser_.has_buffered_bytes() || !socket_.peer_finished_sending());
  settings.http10 = request.minor_version == 0;
  settings.write_timeout = settings_.write_timeout;
  settings.server_stopping = &server_stopping;
  HttpResponse response(socket_, settings);

  const HttpRouter::Match match = router.match(request.method, request.path);
  if (!match.handler) {
    if (match.allowed_methods.empty()) {
      response.send_error(404, concat("no route for ", request.method, " ", request.path));
    } else {
      response.send_error(405, concat("method ", request.method, " is not allowed for ", request.path),
                          {{"Allow", match.allowed_methods}});
    }
    return response.finish(false, {});
  }
  bool handler_failed = true;
  std::string failure;
  try {
    (*match.handler)(request, response);
    handler_failed = false;
  } catch (const std::exception& error) {
    failure = error.what();
  } catch (...) {
    failure = "unknown exception";
  }
  if (handler_failed) log_warn("HTTP ", request.method, " ", request.path, " failed: ", failure);
  return response.finish(handler_failed, failure);
}

}  // namespace kiln::serving
