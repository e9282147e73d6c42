// One HTTP exchange over libcurl. Each thread keeps its own CURL handle, so
// connections are reused across a thread's requests without any locking.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "storage/sigv4.h"

namespace kiln::storage {

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  HeaderList headers;
  // The body: `body` in memory, or `body_length` bytes of `body_fd` from `body_offset`.
  std::string_view body;
  int body_fd = -1;
  int64_t body_offset = 0;
  int64_t body_length = 0;
  // A 2xx response body goes to `sink_fd` at `sink_offset` (pwrite) when set,
  // else into HttpResponse::body. Error bodies always go to HttpResponse::body.
  int sink_fd = -1;
  int64_t sink_offset = 0;
  // With sink_fd: more than this many body bytes fail the exchange (-1: no limit),
  // so a server ignoring a Range header cannot write past the range.
  int64_t sink_limit = -1;
};

struct HttpResponse {
  long status = 0;              // 0 when the transport failed
  std::string transport_error;  // curl's message when status is 0
  // For a transport failure: whether trying again can help (a refused, reset
  // or timed-out connection can; a full disk, a shrinking source file or a
  // malformed URL cannot).
  bool transport_retryable = true;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int64_t sink_bytes = 0;  // bytes written to sink_fd

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

HttpResponse http_perform(const HttpRequest& request);

}  // namespace kiln::storage
