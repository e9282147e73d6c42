#include "checkpoint/hf_config.h"

#include <cmath>
#include <cstdint>
#include <fstream>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw_error("cannot read ", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_error(path.string(), " is not valid JSON: ", e.what());
  }
}

std::vector<int64_t> ids_of(const nlohmann::json& v) {
  std::vector<int64_t> ids;
  if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
  if (v.is_array()) {
    for (const auto& x : v) {
      if (x.is_number_integer()) ids.push_back(x.get<int64_t>());
    }
  }
  return ids;
}

}  // namespace

HfConfig HfConfig::load(const std::filesystem::path& dir) {
  const auto file = dir / "config.json";
  if (!std::filesystem::is_directory(dir)) throw_error("checkpoint directory ", dir.string(), " does not exist");
  if (!std::filesystem::exists(file)) {
    throw_error("missing ", file.string(), ": a HuggingFace checkpoint directory needs its config.json");
  }
  HfConfig cfg = from_json(read_json_file(file), file);
  const auto gen = dir / "generation_config.json";
  if (std::filesystem::exists(gen)) cfg.generation_ = read_json_file(gen);
  return cfg;
}

HfConfig HfConfig::from_json(nlohmann::json config, std::filesystem::path file) {
  if (!config.is_object()) throw_error(file.string(), " must hold a JSON object, not ", config.type_name());
  HfConfig cfg;
  cfg.config_ = std::move(config);
  cfg.file_ = std::move(file);
  return cfg;
}

void HfConfig::apply_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw_error("override '", assignment, "' must have the form key=value");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  config_[key] = value.is_discarded() ? nlohmann::json(text) : value;
}

void HfConfig::fail(const std::string& key, const std::string& problem) const {
  throw_error(file_.string(), ": '", key, "' ", problem);
}

const nlohmann::json& HfConfig::value(const std::string& key) const {
  static const nlohmann::json kNull;
  auto it = config_.find(key);
  return it == config_.end() ? kNull : *it;
}

bool HfConfig::has(const std::string& key) const { return !value(key).is_null(); }

std::vector<std::string> HfConfig::architectures() const {
  std::vector<std::string> out;
  const auto& v = value("architectures");
  if (v.is_array()) {
    for (const auto& a : v) {
      if (a.is_string()) out.push_back(a.get<std::string>());
    }
  }
  return out;
}

std::string HfConfig::model_type() const { return get_string("model_type", ""); }

int64_t HfConfig::get_int(const std::string& key) const {
  const auto& v = value(key);
  if (v.is_null()) fail(key, "is missing");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail(key, "is too large, got " + v.dump());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // A whole number written as a float (4096.0); converting one outside int64's range would be undefined.
    const double d = v.get<double>();
    if (d != std::trunc(d)) fail(key, "must be an integer, got " + v.dump());
    if (d < -0x1p63 || d >= 0x1p63) fail(key, "is too large, got " + v.dump());
    return static_cast<int64_t>(d);
  }
  fail(key, "must be an integer, got " + v.dump());
}

int64_t HfConfig::get_int(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }

double HfConfig::get_double(const std::string& key) const {
  const auto& v = value(key);
  if (v.is_null()) fail(key, "is missing");
  if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
  return v.get<double>();
}

double HfConfig::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}

bool HfConfig::get_bool(const std::string& key, bool fallback) const {
  const auto& v = value(key);
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string HfConfig::get_string(const std::string& key, const std::string& fallback) const {
  const auto& v = value(key);
  if (v.is_null()) return fallback;
  if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::optional<int64_t> HfConfig::find_int_any(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    if (has(k)) return get_int(k);
  }
  return std::nullopt;
}

std::optional<double> HfConfig::find_double_any(std::initializer_list<const char*> keys) const {
  for (const char* k : keys) {
    if (has(k)) return get_double(k);
  }
  return std::nullopt;
}

int64_t HfConfig::get_int_any(std::initializer_list<const char*> keys) const {
  if (auto v = find_int_any(keys)) return *v;
  std::string names;
  for (const char* k : keys) names += (names.empty() ? "" : " or ") + std::string("'") + k + "'";
  throw_error(file_.string(), ": ", names, " is missing");
}

std::optional<std::string> HfConfig::torch_dtype() const {
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto& v = value(key);
    if (v.is_string()) return v.get<std::string>();
  }
  return std::nullopt;
}

double HfConfig::rope_theta(double fallback) const {
  if (has("rope_theta")) return get_double("rope_theta");
  const auto& params = value("rope_parameters");
  if (params.is_object() && params.contains("rope_theta") && params["rope_theta"].is_number()) {
    return params["rope_theta"].get<double>();
  }
  return fallback;
}

nlohmann::json HfConfig::rope_scaling() const {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const auto& v = value(key);
    if (!v.is_object()) continue;
    std::string type = "default";
    if (v.contains("rope_type") && v["rope_type"].is_string()) type = v["rope_type"].get<std::string>();
    if (v.contains("type") && v["type"].is_string()) type = v["type"].get<std::string>();
    if (type == "default") continue;
    nlohmann::json out = v;
    out["rope_type"] = type;
    return out;
  }
  return nullptr;
}

std::vector<int64_t> HfConfig::eos_token_ids() const {
  if (generation_.is_object() && generation_.contains("eos_token_id")) {
    auto ids = ids_of(generation_["eos_token_id"]);
    if (!ids.empty()) return ids;
  }
  return ids_of(value("eos_token_id"));
}

int64_t HfConfig::bos_token_id() const {
  if (generation_.is_object() && generation_.contains("bos_token_id")) {
    auto ids = ids_of(generation_["bos_token_id"]);
    if (!ids.empty()) return ids[0];
  }
  auto ids = ids_of(value("bos_token_id"));
  return ids.empty() ? -1 : ids[0];
}

}  // namespace kiln::checkpoint
