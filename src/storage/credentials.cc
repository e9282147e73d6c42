#include "storage/credentials.h"

#include "core/error.h"
#include "storage/ini_file.h"

namespace kiln::storage {

namespace {
std::string home_file(const Environment& env, const std::string& relative) {
  const std::string home = env_value(env, "HOME");
  return (home.empty() ? std::string(".") : home) + "/" + relative;
}

std::string value_or_empty(const IniSection& section, const std::string& key) {
  const auto it = section.find(key);
  return it == section.end() ? std::string() : it->second;
}

// Credentials from one INI section, when it has both keys.
bool credentials_from_section(const IniFile& ini, const std::string& section_name, Credentials& out) {
  const auto it = ini.find(section_name);
  if (it == ini.end()) return false;
  out.access_key_id = value_or_empty(it->second, "aws_access_key_id");
  out.secret_access_key = value_or_empty(it->second, "aws_secret_access_key");
  out.session_token = value_or_empty(it->second, "aws_session_token");
  return !out.access_key_id.empty() && !out.secret_access_key.empty();
}
}  // namespace

std::string aws_profile_name(const Environment& env) {
  for (const char* name : {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"}) {
    const std::string v = env_value(env, name);
    if (!v.empty()) return v;
  }
  return "default";
}

std::string aws_credentials_file(const Environment& env) {
  const std::string v = env_value(env, "AWS_SHARED_CREDENTIALS_FILE");
  return v.empty() ? home_file(env, ".aws/credentials") : v;
}

std::string aws_config_file(const Environment& env) {
  const std::string v = env_value(env, "AWS_CONFIG_FILE");
  return v.empty() ? home_file(env, ".aws/config") : v;
}

Credentials resolve_credentials(const Environment& env) {
  Credentials c;
  c.access_key_id = env_value(env, "AWS_ACCESS_KEY_ID");
  c.secret_access_key = env_value(env, "AWS_SECRET_ACCESS_KEY");
  // An explicitly chosen profile wins over keys in the environment only in the
  // SDKs' newer rules; the CLI (and kiln) prefers the environment keys.
  if (!c.access_key_id.empty() && !c.secret_access_key.empty()) {
    c.session_token = env_value(env, "AWS_SESSION_TOKEN");
    c.source = "environment (AWS_ACCESS_KEY_ID)";
    return c;
  }
  const std::string profile = aws_profile_name(env);
  const std::string credentials_path = aws_credentials_file(env);
  if (credentials_from_section(read_ini_file(credentials_path), profile, c)) {
    c.source = "profile '" + profile + "' in " + credentials_path;
    return c;
  }
  // The config file may hold keys too, under [profile NAME] (or [default]).
  const std::string config_path = aws_config_file(env);
  const std::string config_section = profile == "default" ? profile : "profile " + profile;
  if (credentials_from_section(read_ini_file(config_path), config_section, c)) {
    c.source = "profile '" + profile + "' in " + config_path;
    return c;
  }
  throw_error("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '", profile,
              "' to ", credentials_path, " or ", config_path);
}

}  // namespace kiln::storage
