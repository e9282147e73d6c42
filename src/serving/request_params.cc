#include "serving/request_params.h"

namespace kiln::serving {

nlohmann::json parse_request_body(const std::string& body) {
  const nlohmann::json::parser_callback_t check_depth = [](int depth, nlohmann::json::parse_event_t event,
                                                           nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxRequestJsonDepth) {
      throw ApiError{400, "the request body nests arrays and objects more than " +
                              std::to_string(kMaxRequestJsonDepth) + " levels deep"};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(body, check_depth);
  } catch (const nlohmann::json::exception& e) {
    throw ApiError{400, std::string("the request body is not valid JSON: ") + e.what()};
  }
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

int64_t int_param(const nlohmann::json& object, const char* key, int64_t fallback) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw ApiError{400, std::string("'") + key + "' must be an integer, got " + v->dump()};
  return v->get<int64_t>();
}

double number_param(const nlohmann::json& object, const char* key, double fallback) {
  const auto* v = find(object, key);
  if (!v) return fallback;
  if (!v->is_number()) throw ApiError{400, std::string("'") + key + "' must be a number, got " + v->dump()};
  return v->get<double>();
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
