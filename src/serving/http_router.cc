#include "serving/http_router.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace kiln::serving {

void HttpRouter::add_exact(std::string method, std::string path, HttpHandler handler) {
  add(Route{std::move(method), std::move(path), false, std::move(handler)});
}

void HttpRouter::add_prefix(std::string method, std::string prefix, HttpHandler handler) {
  add(Route{std::move(method), std::move(prefix), true, std::move(handler)});
}

void HttpRouter::add(Route route) {
  if (route.method.empty() || route.pattern.empty() || !route.handler) {
    throw Error("an HTTP route needs a method, a path and a handler");
  }
  for (const Route& existing : routes_) {
    if (existing.method == route.method && existing.pattern == route.pattern && existing.is_prefix == route.is_prefix) {
      throw_error("HTTP route ", route.method, " ", route.pattern, route.is_prefix ? "*" : "",
                  " is already registered");
    }
  }
  routes_.push_back(std::move(route));
}

HttpRouter::Match HttpRouter::match(std::string_view method, std::string_view path) const {
  // Rank of a route matching the path: exact routes first, then the longest prefix.
  auto rank = [&](const Route& route) -> long {
    if (!route.is_prefix) return route.pattern == path ? static_cast<long>(path.size()) + 1 : -1;
    return path.starts_with(route.pattern) ? static_cast<long>(route.pattern.size()) : -1;
  };
  const Route* best = nullptr;
  long best_rank = -1;
  bool best_is_exact_method = false;
  std::vector<std::string> allowed;
  for (const Route& route : routes_) {
    const long route_rank = rank(route);
    if (route_rank < 0) continue;
    allowed.push_back(route.method);
    if (route.method == "GET") allowed.emplace_back("HEAD");
    const bool exact_method = route.method == method;
    if (!exact_method && !(method == "HEAD" && route.method == "GET")) continue;
    // At equal rank an explicit HEAD route beats GET serving HEAD.
    if (route_rank > best_rank || (route_rank == best_rank && exact_method && !best_is_exact_method)) {
      best = &route;
      best_rank = route_rank;
      best_is_exact_method = exact_method;
    }
  }
  Match result;
  if (best) {
    result.handler = &best->handler;
    return result;
  }
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  for (const std::string& name : allowed) {
    if (!result.allowed_methods.empty()) result.allowed_methods += ", ";
    result.allowed_methods += name;
  }
  return result;
}

}  // namespace kiln::serving
