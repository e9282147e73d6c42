#include "storage/s3_uri.h"

#include "core/error.h"

namespace kiln::storage {

namespace {
constexpr std::string_view kScheme = "s3://";

// S3's bucket naming rules, loosely: enough to catch "s3://" typos early
// rather than sending a request that fails with a confusing signature error.
bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}
}  // namespace

bool is_s3_uri(std::string_view text) { return text.starts_with(kScheme); }

S3Uri S3Uri::parse(std::string_view text) {
  if (!is_s3_uri(text)) throw_error("not an S3 URI (expected s3://BUCKET/KEY): '", text, "'");
  const std::string_view rest = text.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  S3Uri uri;
  uri.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) uri.key = std::string(rest.substr(slash + 1));
  if (uri.bucket.empty()) throw_error("S3 URI '", text, "' has no bucket name");
  if (!valid_bucket(uri.bucket)) throw_error("S3 URI '", text, "' has an invalid bucket name '", uri.bucket, "'");
  return uri;
}

std::string S3Uri::str() const { return std::string(kScheme) + bucket + (key.empty() ? "" : "/" + key); }

std::string S3Uri::prefix() const {
  if (key.empty() || key.ends_with('/')) return key;
  return key + "/";
}

S3Uri S3Uri::child(std::string_view name) const { return S3Uri{bucket, prefix() + std::string(name)}; }

}  // namespace kiln::storage
