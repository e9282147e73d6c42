// HttpResponse: how a route handler answers one request. Either a complete
// response (status, headers, body) or a stream: chunked transfer encoding, one
// chunk written and flushed per write, for JSON lines and server-sent events.
// Writes report a client that has gone (false), and client_gone() polls for it
// while nothing is written, so that a generation can be cancelled and its slot
// freed at once. All methods may be called from any thread; the response must
// be finished before the handler returns (the server completes what is left).
#pragma once

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "serving/http_request.h"

namespace kiln::serving {

class HttpSocket;

// What the connection knows that the response must honour.
struct HttpResponseSettings {
  bool head_only = false;                              // a HEAD request: headers as for GET, no body
  bool keep_alive = true;                              // the client allows another request on this connection
  bool http10 = false;                                 // an HTTP/1.0 client, which knows no chunked encoding
  std::chrono::milliseconds write_timeout{30000};      // a write making no progress this long fails
  const std::atomic<bool>* server_stopping = nullptr;  // when true, responses close their connection
};

class HttpResponse {
 public:
  // Made by the server for each request.
  HttpResponse(HttpSocket& socket, HttpResponseSettings settings);
  HttpResponse(const HttpResponse&) = delete;
  HttpResponse& operator=(const HttpResponse&) = delete;

  // Sends a complete response; false when the client has gone. Content-Length
  // and Transfer-Encoding are the server's to set and are dropped from
  // `extra_headers`; "Connection: close" there closes the connection after.
  bool send(int status, std::string_view content_type, std::string_view body, const HttpHeaders& extra_headers = {});
  bool send_json(int status, const nlohmann::json& body, const HttpHeaders& extra_headers = {});
  // {"code": status, "error": message}, the body of the server's own errors (404, 405, 413, 500 ...).
  bool send_error(int status, std::string_view message, const HttpHeaders& extra_headers = {});

  // Starts a streaming response (chunked; close-delimited for HTTP/1.0 clients).
  bool start_stream(int status, std::string_view content_type, const HttpHeaders& extra_headers = {});
  // Writes one chunk and flushes it; false when the client has gone (then stop
  // generating). An empty chunk writes nothing: it would end the stream.
  bool write_chunk(std::string_view data);
  // One JSON value and a newline (application/jsonlines).
  bool write_json_line(const nlohmann::json& value);
  // One server-sent event (text/event-stream): "data: <line>" per line of
  // `data`, an "event: " line first when `event` is given, then a blank line.
  bool write_event(std::string_view data, std::string_view event = {});
  // Writes the last chunk; the connection may then carry another request.
  bool end_stream();

  // Whether the client has closed or reset the connection (or a write to it
  // failed). Does not block and consumes nothing: poll it while the engine
  // computes and nothing is written. A client that only half-closed (sent its
  // request, then shutdown(SHUT_WR)) has not gone. A FIN alone cannot tell a
  // half-close from a close, so before the response starts an HTTP/1.1 client
  // that sent FIN gets one interim `100 Continue` (which every HTTP/1.1 client
  // must accept, RFC 9110 15.2): a closed socket answers it with a reset,
  // which a later call sees.
  bool client_gone();
  // Whether a response or stream has been started.
  bool started() const;
  // Whether a stream is open: started and not yet ended.
  bool streaming() const;

 private:
  friend class HttpConnection;
  enum class Phase { not_started, streaming, complete };

  // Completes what the handler left open (a 500 if it sent nothing, the last
  // chunk of a stream) and says whether the connection can be kept.
  bool finish(bool handler_failed, std::string_view failure);
  std::string build_head(int status, std::string_view content_type, const HttpHeaders& extra_headers,
                         std::string_view framing, bool can_keep_alive);
  void require_phase(Phase phase, std::string_view operation) const;
  bool write(std::initializer_list<std::string_view> parts);

  HttpSocket& socket_;
  const HttpResponseSettings settings_;
  mutable std::mutex mutex_;  // one writer at a time; guards the fields below
  Phase phase_ = Phase::not_started;
  bool keep_alive_ = false;
  std::atomic<bool> failed_{false};
  std::atomic<bool> probed_{false};  // the 100 Continue that tells a close from a half-close was sent
};

// A complete error response ({"code": status, "error": message}, as
// HttpResponse::send_error writes) that closes the connection: what the
// server sends when no handler runs (refusals of a request or a connection).
std::string http_error_response(int status, std::string_view message, const HttpHeaders& extra_headers = {});

}  // namespace kiln::serving
