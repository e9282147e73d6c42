// HttpRequest: one HTTP/1.x request as a route handler sees it, complete with
// its decoded body.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::serving {

// Header fields in arrival order, names as the peer spelled them.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Decodes %XX escapes (and '+' as a space when `plus_as_space`, as in query
// strings); malformed escapes are kept as they are.
std::string percent_decode(std::string_view text, bool plus_as_space);

struct HttpRequest {
  std::string method;          // as sent, e.g. "POST" (methods are case-sensitive)
  std::string target;          // the request-target as sent
  std::string path;            // up to '?', not percent-decoded: routes match what the client sent
  std::string query;           // after '?', without it; empty when absent
  int minor_version = 1;       // HTTP/1.<minor_version>
  HttpHeaders headers;         // in arrival order
  std::string body;            // de-chunked when it came with Transfer-Encoding: chunked
  std::string remote_address;  // the client's "ip:port"

  // The first value of the header named `name` (any case), or "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // The decoded value of query parameter `name`; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
};

}  // namespace kiln::serving
