#include "serving/http_connection.h"

#include <array>
#include <exception>
#include <utility>

#include "core/log.h"
#include "serving/http_fields.h"

namespace kiln::serving {
namespace {

// How long a refused request's remaining input is read and dropped before the
// close, so that the refusal reaches the client (see drain_before_close).
constexpr std::chrono::milliseconds kRefusalDrainTime{1000};

bool client_wants_keep_alive(const HttpRequest& request) {
  const std::string connection = request.header("Connection");
  if (request.minor_version == 0) return http_header_has_token(connection, "keep-alive");
  return !http_header_has_token(connection, "close");
}

}  // namespace

HttpConnection::HttpConnection(int fd, std::string remote_address, const HttpConnectionSettings& settings)
    : socket_(fd), remote_address_(std::move(remote_address)), settings_(settings), parser_(settings.limits) {}

HttpConnection::Next HttpConnection::serve(const HttpRouter& router, const std::atomic<bool>& server_stopping) {
  while (true) {
    if (!read_request()) return Next::close;
    const bool keep_alive = respond(router, server_stopping);
    parser_.next_request();
    if (!keep_alive || server_stopping.load()) return Next::close;
    // A pipelined request already in the buffer would never wake the poller.
    if (!parser_.has_buffered_bytes()) return Next::wait_for_request;
  }
}

bool HttpConnection::read_request() {
  const auto deadline = HttpSocket::Clock::now() + settings_.request_timeout;
  std::array<char, 16384> buffer;
  while (true) {
    switch (parser_.parse()) {
      case HttpRequestParser::State::complete: return true;
      case HttpRequestParser::State::failed: refuse(parser_.error_status(), parser_.error_message()); return false;
      case HttpRequestParser::State::head_complete:
        if (parser_.expects_continue() && parser_.body_pending() &&
            !socket_.write_all({"HTTP/1.1 100 Continue\r\n\r\n"}, settings_.write_timeout)) {
          return false;
        }
        continue;
      case HttpRequestParser::State::need_more: break;
    }
    const auto read = socket_.read_some(buffer.data(), buffer.size(), deadline);
    switch (read.status) {
      case HttpSocket::ReadStatus::data: parser_.append(std::string_view(buffer.data(), read.bytes)); break;
      case HttpSocket::ReadStatus::timed_out:
        if (parser_.started()) refuse(408, "the request did not arrive in time");
        return false;
      case HttpSocket::ReadStatus::closed:
      case HttpSocket::ReadStatus::failed: return false;
    }
  }
}

void HttpConnection::refuse(int status, std::string_view message) {
  HttpResponseSettings settings;
  settings.keep_alive = false;
  settings.write_timeout = settings_.write_timeout;
  HttpResponse response(socket_, settings);
  if (response.send_error(status, message)) socket_.drain_before_close(kRefusalDrainTime);
}

bool HttpConnection::respond(const HttpRouter& router, const std::atomic<bool>& server_stopping) {
  HttpRequest& request = parser_.request();
  request.remote_address = remote_address_;
  HttpResponseSettings settings;
  settings.head_only = request.method == "HEAD";
  settings.keep_alive = client_wants_keep_alive(request);
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
