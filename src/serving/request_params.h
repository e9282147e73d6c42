// Reading generation parameters from LMI and OpenAI request bodies: types
// checked, unknown keys refused with the list of known ones (HTTP 400).
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "serving/completion.h"

namespace kiln::serving {

// Arrays and objects may nest this deep in a request body. Deeper documents are refused while parsing: copying,
// freeing or rendering one (a chat message's content goes to the chat template) recurses once per level, and a
// 16 MiB body could otherwise nest millions of levels and overflow the stack.
inline constexpr int kMaxRequestJsonDepth = 64;

// Parses a request body; throws ApiError 400 when it is not JSON (a number past a double's range included) or
// nests deeper than kMaxRequestJsonDepth.
nlohmann::json parse_request_body(const std::string& body);

// Throws ApiError 400 naming the first key of `object` not in `known`.
void refuse_unknown_keys(const nlohmann::json& object, std::initializer_list<const char*> known, const char* where);

// Typed getters: ApiError 400 naming the key and the expected type.
int64_t int_param(const nlohmann::json& object, const char* key, int64_t fallback);
double number_param(const nlohmann::json& object, const char* key, double fallback);
bool bool_param(const nlohmann::json& object, const char* key, bool fallback);
// `stop`: a string or a list of strings.
std::vector<std::string> stop_param(const nlohmann::json& object, const char* key);

}  // namespace kiln::serving
