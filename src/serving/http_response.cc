#include "serving/http_response.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/error.h"
#include "serving/http_fields.h"
#include "serving/http_socket.h"
#include "serving/http_status.h"

namespace kiln::serving {
namespace {

// IMF-fixdate (RFC 9110 5.6.7), spelled out so that no locale can change it.
std::string http_date_now() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday % 7], utc.tm_mday,
                kMonths[utc.tm_mon % 12], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

// Model output may hold invalid UTF-8 (a token split inside a character);
// replacing it beats failing the response.
std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void append_field(std::string& head, std::string_view name, std::string_view value) {
  if (!http_is_token(name) || !http_is_field_value(value)) {
    throw std::invalid_argument(concat("invalid response header field '", name, "'"));
  }
  head.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string http_error_response(int status, std::string_view message, const HttpHeaders& extra_headers) {
  if (status < 400 || status > 599) throw std::invalid_argument(concat("invalid HTTP error status ", status));
  const std::string body = dump_json(nlohmann::json{{"code", status}, {"error", message}});
  std::string response;
  response.reserve(256 + body.size());
  response.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(http_reason_phrase(status));
  response.append("\r\n");
  append_field(response, "Date", http_date_now());
  append_field(response, "Server", "kiln");
  append_field(response, "Content-Type", "application/json");
  append_field(response, "Content-Length", std::to_string(body.size()));
  for (const auto& [name, value] : extra_headers) {
    if (http_iequals(name, "Content-Length") || http_iequals(name, "Transfer-Encoding") ||
        http_iequals(name, "Connection")) {
      continue;
    }
    append_field(response, name, value);
  }
  response.append("Connection: close\r\n\r\n").append(body);
  return response;
}

HttpResponse::HttpResponse(HttpSocket& socket, HttpResponseSettings settings) : socket_(socket), settings_(settings) {}

bool HttpResponse::started() const {
  std::lock_guard lock(mutex_);
  return phase_ != Phase::not_started;
}

bool HttpResponse::streaming() const {
  std::lock_guard lock(mutex_);
  return phase_ == Phase::streaming;
}

bool HttpResponse::client_gone() {
  if (failed_.load() || socket_.peer_gone()) return true;
  if (probed_.load() || settings_.http10 || !socket_.peer_finished_sending()) return false;
  // A FIN before the response: probe once, unless a writer holds the lock (then
  // the response has begun, and its own writes will tell).
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || phase_ != Phase::not_started || probed_.exchange(true)) return false;
  if (!write({"HTTP/1.1 100 Continue\r\n\r\n"})) return true;
  return false;  // a reset, if the client has closed, comes a round trip later
}

void HttpResponse::require_phase(Phase phase, std::string_view operation) const {
  if (phase_ == phase) return;
  throw std::logic_error(concat("HttpResponse::", operation, ": ",
                                phase_ == Phase::not_started ? "no stream was started"
                                : phase_ == Phase::streaming ? "a stream is already open"
                                                             : "the response was already sent"));
}

std::string HttpResponse::build_head(int status, std::string_view content_type, const HttpHeaders& extra_headers,
                                     std::string_view framing, bool can_keep_alive) {
  // 1xx answers are the server's (100 Continue); handlers send final responses.
  if (status < 200 || status > 599) throw std::invalid_argument(concat("invalid HTTP status ", status));
  bool keep_alive = can_keep_alive && !(settings_.server_stopping && settings_.server_stopping->load());
  std::string head;
  head.reserve(256);
  head.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(http_reason_phrase(status)).append("\r\n");
  append_field(head, "Date", http_date_now());
  append_field(head, "Server", "kiln");
  if (!content_type.empty()) append_field(head, "Content-Type", content_type);
  head.append(framing);
  for (const auto& [name, value] : extra_headers) {
    if (http_iequals(name, "Content-Length") || http_iequals(name, "Transfer-Encoding")) continue;
    if (http_iequals(name, "Connection")) {
      if (http_header_has_token(value, "close")) keep_alive = false;
      continue;
    }
    append_field(head, name, value);
  }
  if (!keep_alive) {
    head.append("Connection: close\r\n");
  } else if (settings_.http10) {
    head.append("Connection: keep-alive\r\n");
  }
  head.append("\r\n");
  keep_alive_ = keep_alive;
  return head;
}

bool HttpResponse::write(std::initializer_list<std::string_view> parts) {
  if (socket_.write_all(parts, settings_.write_timeout)) return true;
  failed_.store(true);
  return false;
}

bool HttpResponse::send(int status, std::string_view content_type, std::string_view body,
                        const HttpHeaders& extra_headers) {
  std::lock_guard lock(mutex_);
  require_phase(Phase::not_started, "send");
  // 204 and 304 carry no content and must not announce a length (RFC 9110 8.6).
  const bool bodiless = status == 204 || status == 304;
  const std::string framing = bodiless ? std::string() : concat("Content-Length: ", body.size(), "\r\n");
  const std::string head =
      build_head(status, bodiless ? std::string_view() : content_type, extra_headers, framing, settings_.keep_alive);
  phase_ = Phase::complete;
  if (bodiless || settings_.head_only) return write({head});
  return write({head, body});
}

bool HttpResponse::send_json(int status, const nlohmann::json& body, const HttpHeaders& extra_headers) {
  return send(status, "application/json", dump_json(body), extra_headers);
}

bool HttpResponse::send_error(int status, std::string_view message, const HttpHeaders& extra_headers) {
  return send_json(status, nlohmann::json{{"code", status}, {"error", message}}, extra_headers);
}

bool HttpResponse::start_stream(int status, std::string_view content_type, const HttpHeaders& extra_headers) {
  std::lock_guard lock(mutex_);
  require_phase(Phase::not_started, "start_stream");
  // HTTP/1.0 has no chunked encoding: the stream's end is the connection's close.
  const bool chunked = !settings_.http10;
  const std::string head = build_head(status, content_type, extra_headers,
                                      chunked ? "Transfer-Encoding: chunked\r\n" : "", chunked && settings_.keep_alive);
  phase_ = Phase::streaming;
  return write({head});
}

bool HttpResponse::write_chunk(std::string_view data) {
  std::lock_guard lock(mutex_);
  require_phase(Phase::streaming, "write_chunk");
  // Checked before every write: the first write to a closed connection
  // succeeds (it only fills the send buffer), so a write alone reports the
  // client's departure one chunk late.
  if (failed_.load() || socket_.peer_gone()) {
    failed_.store(true);
    return false;
  }
  if (data.empty() || settings_.head_only) return true;
  if (settings_.http10) return write({data});
  char size_line[24];
  const auto [end, error] = std::to_chars(size_line, size_line + 16, data.size(), 16);
  (void)error;  // 16 hex digits hold any size_t
  std::memcpy(end, "\r\n", 2);
  return write({std::string_view(size_line, static_cast<size_t>(end - size_line) + 2), data, "\r\n"});
}

bool HttpResponse::write_json_line(const nlohmann::json& value) { return write_chunk(dump_json(value) + "\n"); }

bool HttpResponse::write_event(std::string_view data, std::string_view event) {
  std::string frame;
  frame.reserve(data.size() + event.size() + 16);
  if (!event.empty()) frame.append("event: ").append(event).append("\n");
  while (true) {
    const size_t newline = data.find('\n');
    frame.append("data: ").append(data.substr(0, newline)).append("\n");
    if (newline == std::string_view::npos) break;
    data.remove_prefix(newline + 1);
  }
  frame.append("\n");
  return write_chunk(frame);
}

bool HttpResponse::end_stream() {
  std::lock_guard lock(mutex_);
  require_phase(Phase::streaming, "end_stream");
  phase_ = Phase::complete;
  if (failed_.load()) return false;
  if (settings_.head_only || settings_.http10) return true;
  return write({"0\r\n\r\n"});
}

bool HttpResponse::finish(bool handler_failed, std::string_view failure) {
  Phase phase;
  {
    std::lock_guard lock(mutex_);
    phase = phase_;
  }
  if (phase == Phase::not_started) {
    send_error(500, handler_failed ? failure : "the handler sent no response");
  } else if (phase == Phase::streaming && !handler_failed) {
    end_stream();
  } else if (phase == Phase::streaming) {
    // No last chunk: closing instead tells the client the stream is incomplete.
    std::lock_guard lock(mutex_);
    phase_ = Phase::complete;
    keep_alive_ = false;
  }
  std::lock_guard lock(mutex_);
  return phase_ == Phase::complete && keep_alive_ && !failed_.load();
}

}  // namespace kiln::serving
