#include "serving/http_router.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "core/error.h"
#include "serving/http_socket.h"

namespace kiln::serving {
namespace {

// Routes whose handlers record their name, to see which one a match picked.
class HttpRouterTest : public ::testing::Test {
 protected:
  HttpHandler recorder(std::string name) {
    return [this, name](const HttpRequest&, HttpResponse&) { called_ = name; };
  }
  // The name of the handler `match` picked for method and path, or "" when none did.
  std::string resolve(std::string_view method, std::string_view path) {
    const HttpRouter::Match match = router_.match(method, path);
    if (!match.handler) return "";
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    HttpSocket socket(fds[0]);
    HttpResponse response(socket, {});
    called_.clear();
    (*match.handler)(HttpRequest(), response);
    ::close(fds[1]);
    return called_;
  }

  HttpRouter router_;
  std::string called_;
};

TEST_F(HttpRouterTest, ExactRoutesMatchOnlyTheirPath) {
  router_.add_exact("POST", "/invocations", recorder("invocations"));
  EXPECT_EQ(resolve("POST", "/invocations"), "invocations");
  EXPECT_EQ(resolve("POST", "/invocations/x"), "");
  EXPECT_EQ(router_.match("POST", "/other").allowed_methods, "");
}

TEST_F(HttpRouterTest, ExactBeatsPrefixAndLongerPrefixBeatsShorter) {
  router_.add_prefix("POST", "/", recorder("root"));
  router_.add_prefix("POST", "/predictions/", recorder("predictions"));
  router_.add_exact("POST", "/predictions/special", recorder("special"));
  EXPECT_EQ(resolve("POST", "/predictions/model"), "predictions");
  EXPECT_EQ(resolve("POST", "/predictions/special"), "special");
  EXPECT_EQ(resolve("POST", "/elsewhere"), "root");
}

TEST_F(HttpRouterTest, WrongMethodListsTheAllowedOnes) {
  router_.add_exact("POST", "/v1/completions", recorder("post"));
  router_.add_exact("GET", "/v1/completions", recorder("get"));
  const HttpRouter::Match match = router_.match("DELETE", "/v1/completions");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allowed_methods, "GET, HEAD, POST");
}

TEST_F(HttpRouterTest, MethodMissingAtBestRankFallsToAnotherRoute) {
  router_.add_exact("POST", "/ping", recorder("post ping"));
  router_.add_prefix("GET", "/", recorder("get anything"));
  EXPECT_EQ(resolve("GET", "/ping"), "get anything");
}

TEST_F(HttpRouterTest, HeadIsServedByGetUnlessRoutedItself) {
  router_.add_exact("GET", "/ping", recorder("get"));
  EXPECT_EQ(resolve("HEAD", "/ping"), "get");
  router_.add_exact("HEAD", "/ping", recorder("head"));
  EXPECT_EQ(resolve("HEAD", "/ping"), "head");
}

TEST_F(HttpRouterTest, RefusesDuplicateAndEmptyRoutes) {
  router_.add_exact("GET", "/ping", recorder("a"));
  router_.add_prefix("GET", "/ping", recorder("prefix is another route"));
  EXPECT_THROW(router_.add_exact("GET", "/ping", recorder("b")), Error);
  EXPECT_THROW(router_.add_exact("GET", "", recorder("c")), Error);
  EXPECT_THROW(router_.add_exact("GET", "/x", nullptr), Error);
}

}  // namespace
}  // namespace kiln::serving
