// config.json (and generation_config.json) of a HuggingFace checkpoint, read in
// both transformers 4.x style (torch_dtype, rope_theta, rope_scaling) and 5.x
// style (dtype, rope_parameters), with typed getters whose errors name the
// file and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kiln::checkpoint {

class HfConfig {
 public:
  // Reads DIR/config.json, and DIR/generation_config.json when present.
  static HfConfig load(const std::filesystem::path& dir);
  // For tests and overrides: a config from JSON already in memory.
  static HfConfig from_json(nlohmann::json config, std::filesystem::path file = "config.json");

  const nlohmann::json& raw() const { return config_; }
  const std::filesystem::path& file() const { return file_; }

  // Applies `key=value` overrides (value parsed as JSON, else taken as a string),
  // as `kiln build --hf-override` does for settings a tiny config cannot express.
  void apply_override(const std::string& assignment);

  std::vector<std::string> architectures() const;
  std::string model_type() const;

  bool has(const std::string& key) const;  // present and not null
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // The first of several spellings that is present (n_embd / hidden_size ...).
  int64_t get_int_any(std::initializer_list<const char*> keys) const;
  std::optional<int64_t> find_int_any(std::initializer_list<const char*> keys) const;
  std::optional<double> find_double_any(std::initializer_list<const char*> keys) const;

  // Normalized across transformers versions:
  std::optional<std::string> torch_dtype() const;  // "float32", "bfloat16", ...
  double rope_theta(double fallback) const;
  // The scaling object ({"rope_type": "llama3", "factor": 8, ...}) or null when none.
  nlohmann::json rope_scaling() const;
  // EOS ids from generation_config.json, else config.json (int or list); BOS likewise.
  std::vector<int64_t> eos_token_ids() const;
  int64_t bos_token_id() const;

 private:
  const nlohmann::json& value(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

  nlohmann::json config_;
  nlohmann::json generation_;
  std::filesystem::path file_;
};

}  // namespace kiln::checkpoint
