// Reading engine.json's numbers without nlohmann's silent conversions: get<int>
// of 2^40, of -1 into an unsigned, of 1.5 or of 1e400 (infinity) casts without
// a word, which would let an edited manifest pass its checks with a value
// other than the one written. These accessors refuse any number that is not an
// integer within the target type's range, naming the field.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace kiln::engine {

// `field` names the value in messages ("model.num_layers").
template <typename Int>
Int json_integer(const nlohmann::json& value, std::string_view field) {
  static_assert(std::is_integral_v<Int>);
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<Int>::max())) return static_cast<Int>(v);
  } else if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v >= static_cast<int64_t>(std::numeric_limits<Int>::min()) &&
        (v < 0 || static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<Int>::max()))) {
      return static_cast<Int>(v);
    }
  } else {
    throw_error("engine.json: ", field, " must be an integer, not ", value.dump());
  }
  throw_error("engine.json: ", field, " (", value.dump(), ") is out of range");
}

template <typename Int>
Int json_integer(const nlohmann::json& object, const char* key, std::string_view prefix) {
  return json_integer<Int>(object.at(key), concat(prefix, key));
}

template <typename Int>
std::vector<Int> json_integers(const nlohmann::json& array, std::string_view field) {
  if (!array.is_array()) throw_error("engine.json: ", field, " must be an array of integers");
  std::vector<Int> out;
  for (const auto& v : array) out.push_back(json_integer<Int>(v, field));
  return out;
}

// A number (double) that must be finite: JSON's 1e400 parses as infinity.
inline double json_finite(const nlohmann::json& object, const char* key, std::string_view prefix) {
  const auto& value = object.at(key);
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    throw_error("engine.json: ", prefix, key, " must be a finite number, not ", value.dump());
  }
  return value.get<double>();
}

}  // namespace kiln::engine
