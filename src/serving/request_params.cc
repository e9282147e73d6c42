#include "serving/request_params.h"

#include <algorithm>

namespace kiln::serving {

nlohmann::json parse_request_body(std::string_view body) {
  // The parser says a number overflows but not where: the last key read names it.
  std::string last_key;
  const auto track = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key) last_key = parsed.get<std::string>();
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxRequestJsonDepth) {
      throw ApiError{400, "the request body nests arrays and objects more than " +
                              std::to_string(kMaxRequestJsonDepth) + " levels deep"};
    }
    return true;
  };
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(body, track);
  } catch (const nlohmann::json::out_of_range&) {
    throw ApiError{400, last_key.empty() ? std::string("the request body holds a number too large to represent")
                                         : "'" + last_key + "' is out of range: the number is too large to represent"};
  } catch (const nlohmann::json::exception& e) {
    throw ApiError{400, std::string("the request body is not valid JSON: ") + e.what()};
  }
  if (!parsed.is_object()) throw ApiError{400, "the request body must be a JSON object"};
  return parsed;
}

void refuse_unknown_keys(const nlohmann::json& object, std::initializer_list<const char*> known, const char* where) {
  if (!object.is_object()) throw ApiError{400, std::string(where) + " must be a JSON object"};
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw ApiError{400, "unknown parameter '" + key + "' in " + where + " (supported: " + list + ")"};
    }
  }
}

static const nlohmann::json* find(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

static std::string integer_range(int64_t min, int64_t max) {
  constexpr int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
  if (min == lowest && max == highest) return "an integer in [-2^63, 2^63 - 1]";
  if (max == highest) return "an integer >= " + std::to_string(min);
  if (min == lowest) return "an integer <= " + std::to_string(max);
  if (min == max) return std::to_string(min);
  return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

int64_t int_param(const nlohmann::json& object, const char* key, int64_t fallback, int64_t min, int64_t max) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  const auto refuse = [&] {
    throw ApiError{400, std::string("'") + key + "' must be " + integer_range(min, max) + ", got " + v->dump()};
  };
  if (!v->is_number_integer()) refuse();
  // Unsigned JSON integers past 2^63 - 1 would wrap to negative numbers.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    refuse();
  }
  const auto value = v->get<int64_t>();
  if (value < min || value > max) refuse();
  return value;
}

uint64_t uint_param(const nlohmann::json& object, const char* key, uint64_t fallback) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  throw ApiError{400, std::string("'") + key + "' must be an integer in [0, 2^64 - 1], got " + v->dump()};
}

double number_param(const nlohmann::json& object, const char* key, double fallback) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  if (!v->is_number()) throw ApiError{400, std::string("'") + key + "' must be a number, got " + v->dump()};
  return v->get<double>();
}

void require_param(bool ok, const char* key, std::string_view what, double value) {
  if (ok) return;
  throw ApiError{400,
                 std::string("'") + key + "' must be " + std::string(what) + ", got " + nlohmann::json(value).dump()};
}

int64_t max_new_tokens_param(const ServingContext& ctx, const nlohmann::json& object, const char* key,
                             int64_t fallback) {
  const int64_t max_output = ctx.service.limits().max_output_len;
  const int64_t value = int_param(object, key, std::min(fallback, max_output), 1);
  if (value > max_output) {
    throw ApiError{400, "'" + std::string(key) + "' is " + std::to_string(value) + ", more than the engine's " +
                            "max_output_len " + std::to_string(max_output)};
  }
  return value;
}

runtime::SamplingParams sampling_params(const nlohmann::json& object, double default_temperature) {
  runtime::SamplingParams s;
  s.temperature = number_param(object, "temperature", default_temperature);
  require_param(s.temperature >= 0, "temperature", ">= 0", s.temperature);
  s.top_k = int_param(object, "top_k", 0, 0);
  s.top_p = number_param(object, "top_p", 1.0);
  require_param(s.top_p > 0 && s.top_p <= 1, "top_p", "in (0, 1]", s.top_p);
  s.repetition_penalty = number_param(object, "repetition_penalty", 1.0);
  require_param(s.repetition_penalty > 0, "repetition_penalty", "> 0", s.repetition_penalty);
  s.seed = uint_param(object, "seed", 0);
  return s;
}

bool bool_param(const nlohmann::json& object, const char* key, bool fallback) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw ApiError{400, std::string("'") + key + "' must be true or false, got " + v->dump()};
  return v->get<bool>();
}

std::vector<std::string> stop_param(const nlohmann::json& object, const char* key) {
  const auto* v = find(object, key);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  std::vector<std::string> out;
  if (v->is_array()) {
    for (const auto& s : *v) {
      if (!s.is_string()) break;
      out.push_back(s.get<std::string>());
    }
    if (out.size() == v->size()) return out;
  }
  throw ApiError{400, std::string("'") + key + "' must be a string or a list of strings"};
}

}  // namespace kiln::serving
