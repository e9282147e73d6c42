// Reason phrases for HTTP status codes, for status lines.
#pragma once

#include <string_view>

namespace kiln::serving {

// "Not Found" for 404; a generic phrase of the status class for codes without one.
std::string_view http_reason_phrase(int status);

}  // namespace kiln::serving
