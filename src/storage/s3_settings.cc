#include "storage/s3_settings.h"

#include "core/error.h"
#include "storage/ini_file.h"
#include "storage/sigv4.h"

namespace kiln::storage {

namespace {
std::string config_value(const Environment& env, const std::string& key) {
  const std::string profile = aws_profile_name(env);
  const IniFile config = read_ini_file(aws_config_file(env));
  const auto it = config.find(profile == "default" ? profile : "profile " + profile);
  if (it == config.end()) return "";
  const auto v = it->second.find(key);
  return v == it->second.end() ? std::string() : v->second;
}

std::string first_set(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const std::string v = env_value(env, name);
    if (!v.empty()) return v;
  }
  return "";
}
}  // namespace

S3Settings resolve_s3_settings(const Environment& env) {
  S3Settings s;
  s.credentials = resolve_credentials(env);
  std::string region = first_set(env, {"AWS_REGION", "AWS_DEFAULT_REGION"});
  if (region.empty()) region = config_value(env, "region");
  if (!region.empty()) s.region = region;
  s.endpoint = first_set(env, {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"});
  if (s.endpoint.empty()) s.endpoint = config_value(env, "endpoint_url");
  while (s.endpoint.ends_with('/')) s.endpoint.pop_back();
  if (!s.endpoint.empty() && s.endpoint.find("://") == std::string::npos) {
    throw_error("S3 endpoint '", s.endpoint, "' must start with http:// or https://");
  }
  RetryMode mode = RetryMode::standard;
  if (const std::string v = env_value(env, "AWS_RETRY_MODE"); !v.empty()) {
    mode = parse_retry_mode(v, "AWS_RETRY_MODE");
  } else if (const std::string c = config_value(env, "retry_mode"); !c.empty()) {
    mode = parse_retry_mode(c, "retry_mode in " + aws_config_file(env));
  }
  std::optional<int> attempts;
  if (const std::string v = env_value(env, "AWS_MAX_ATTEMPTS"); !v.empty()) {
    attempts = parse_max_attempts(v, "AWS_MAX_ATTEMPTS");
  } else if (const std::string c = config_value(env, "max_attempts"); !c.empty()) {
    attempts = parse_max_attempts(c, "max_attempts in " + aws_config_file(env));
  }
  s.retry = retry_policy_for(mode, attempts);
  return s;
}

S3Target s3_target(const S3Settings& settings, const std::string& bucket, const std::string& key,
                   const std::string& query) {
  std::string base;
  std::string path;
  // Path-style for custom endpoints (S3-compatible stores rarely have wildcard
  // DNS) and for dotted bucket names (they break the TLS wildcard certificate).
  if (!settings.endpoint.empty() || bucket.find('.') != std::string::npos) {
    base = settings.endpoint.empty() ? "https://s3." + settings.region + ".amazonaws.com" : settings.endpoint;
    path = "/" + uri_encode(bucket, false);
    if (!key.empty()) path += "/" + uri_encode(key, true);
  } else {
    base = "https://" + bucket + ".s3." + settings.region + ".amazonaws.com";
    path = "/" + uri_encode(key, true);
  }
  S3Target t;
  const std::size_t scheme_end = base.find("://") + 3;
  const std::size_t host_end = base.find('/', scheme_end);
  t.host = base.substr(scheme_end, host_end == std::string::npos ? std::string::npos : host_end - scheme_end);
  // A base path on the endpoint (a gateway mounted under /s3) is part of the signed path.
  const std::string base_path = host_end == std::string::npos ? "" : base.substr(host_end);
  t.canonical_uri = base_path + path;
  t.url = base.substr(0, host_end) + t.canonical_uri + (query.empty() ? "" : "?" + query);
  return t;
}

}  // namespace kiln::storage
