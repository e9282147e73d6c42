// HttpRouter: the table from method and path to handler. A route matches a
// path exactly or by prefix ("/predictions/" for every model name); exact
// routes win over prefixes and longer prefixes over shorter ones. A path that
// some route matches under another method is a 405 with an Allow list, not a 404.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "serving/http_request.h"
#include "serving/http_response.h"

namespace kiln::serving {

// Runs on one of the server's worker threads, concurrently with other handlers.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

class HttpRouter {
 public:
  // Throws kiln::Error when the same method and path (or prefix) is already routed.
  void add_exact(std::string method, std::string path, HttpHandler handler);
  void add_prefix(std::string method, std::string prefix, HttpHandler handler);

  struct Match {
    const HttpHandler* handler = nullptr;  // null: no route for this method
    std::string allowed_methods;           // when null: "GET, POST" (a 405) or "" (a 404)
  };
  // HEAD is served by the GET route when it has none of its own.
  Match match(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    bool is_prefix;
    HttpHandler handler;
  };
  void add(Route route);

  std::vector<Route> routes_;
};

}  // namespace kiln::serving
