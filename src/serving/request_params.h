// Reading generation parameters from LMI and OpenAI request bodies: JSON
// parsed with a named key for a number that overflows, types and ranges
// checked, unknown keys refused with the list of known ones (HTTP 400).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "serving/completion.h"

namespace kiln::serving {

// Arrays and objects may nest this deep in a request body. Deeper documents are refused while parsing: copying,
// freeing or rendering one (a chat message's content goes to the chat template) recurses once per level, and a
// 16 MiB body could otherwise nest millions of levels and overflow the stack.
inline constexpr int kMaxRequestJsonDepth = 64;

// The request body as a JSON object: ApiError 400 for invalid JSON, for a
// number too large to represent (naming the key that holds it), for nesting
// deeper than kMaxRequestJsonDepth, for anything but an object.
nlohmann::json parse_request_body(std::string_view body);

// Throws ApiError 400 naming the first key of `object` not in `known`.
void refuse_unknown_keys(const nlohmann::json& object, std::initializer_list<const char*> known, const char* where);

// Typed getters (a missing or null key gives `fallback`): ApiError 400 naming
// the key, what it must be and what it was, for a wrong type or a value out of
// [min, max] (an integer past int64 included, rather than wrapping).
int64_t int_param(const nlohmann::json& object, const char* key, int64_t fallback,
                  int64_t min = std::numeric_limits<int64_t>::min(), int64_t max = std::numeric_limits<int64_t>::max());
// An integer in [0, 2^64 - 1], such as a seed.
uint64_t uint_param(const nlohmann::json& object, const char* key, uint64_t fallback);
double number_param(const nlohmann::json& object, const char* key, double fallback);
bool bool_param(const nlohmann::json& object, const char* key, bool fallback);
// `stop`: a string or a list of strings.
std::vector<std::string> stop_param(const nlohmann::json& object, const char* key);

// How many tokens to generate, under `key`: an integer from 1 to the engine's
// max_output_len (400 naming both otherwise); `fallback` (the server's
// default), capped at max_output_len, when the request does not say.
int64_t max_new_tokens_param(const ServingContext& ctx, const nlohmann::json& object, const char* key,
                             int64_t fallback);
// temperature (>= 0, `default_temperature` when absent), top_k (>= 0), top_p
// (in (0, 1]), repetition_penalty (> 0) and seed (unsigned 64 bits); the caller
// decides greedy.
runtime::SamplingParams sampling_params(const nlohmann::json& object, double default_temperature);

// ApiError 400 unless `ok`: "'<key>' must be <what>, got <value>".
void require_param(bool ok, const char* key, std::string_view what, double value);

}  // namespace kiln::serving
