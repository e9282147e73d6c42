// The header-field grammar of HTTP (RFC 9110 5): token and field-value
// checks, case-insensitive comparison, comma-separated lists. Shared by the
// request parser and the response writer, which must agree on it.
#pragma once

#include <string_view>

namespace kiln::serving {

// ASCII case-insensitive equality: how HTTP compares header names and tokens.
bool http_iequals(std::string_view a, std::string_view b);

// A token (method, header name): one or more of the RFC 9110 tchar characters.
bool http_is_token(std::string_view text);

// A field value: visible characters, spaces, tabs, obs-text; never CR, LF or NUL.
bool http_is_field_value(std::string_view text);

// `text` without leading and trailing spaces and tabs.
std::string_view http_trim(std::string_view text);

// Whether a comma-separated header value ("keep-alive, Upgrade") holds `token`.
bool http_header_has_token(std::string_view value, std::string_view token);

}  // namespace kiln::serving
