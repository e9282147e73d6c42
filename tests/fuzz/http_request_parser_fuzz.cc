// Fuzzes the incremental HTTP/1.x request parser with what a client may send: the bytes arrive in pieces (sizes
// taken from the first input byte), requests may be pipelined, and small limits are tried as well as the defaults.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.h"
#include "serving/http_request_parser.h"

namespace {

using kiln::serving::HttpParserLimits;
using kiln::serving::HttpRequestParser;

void exercise(const kiln::serving::HttpRequest& request) {
  (void)request.header("content-type");
  (void)request.has_header("Transfer-Encoding");
  (void)request.query_param("a");
  (void)request.query_param("");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const std::string_view input = kiln::fuzz::as_text(data + 1, size - 1);
  HttpParserLimits limits;
  if (control & 0x80) limits = HttpParserLimits{256, 8, 512};
  // Pieces of 1 to 64 bytes, or everything at once.
  const std::size_t piece = (control & 0x40) ? input.size() + 1 : (control & 0x3f) + 1;

  kiln::fuzz::expect_only_kiln_errors([&] {
    HttpRequestParser parser(limits);
    std::size_t fed = 0;
    int requests = 0;
    while (true) {
      const HttpRequestParser::State state = parser.parse();
      if (state == HttpRequestParser::State::failed) {
        (void)parser.error_status();
        (void)parser.error_message();
        return;
      }
      if (state == HttpRequestParser::State::head_complete) {
        (void)parser.expects_continue();
        (void)parser.body_pending();
        continue;
      }
      if (state == HttpRequestParser::State::complete) {
        exercise(parser.request());
        if (++requests > 64) return;
        parser.next_request();
        continue;
      }
      // need_more
      (void)parser.started();
      if (fed >= input.size()) return;
      const std::size_t n = std::min(piece, input.size() - fed);
      parser.append(input.substr(fed, n));
      fed += n;
    }
  });
  return 0;
}
