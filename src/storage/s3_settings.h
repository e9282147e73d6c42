// Where S3 requests go (region, endpoint, addressing style) and how they are
// signed: everything a client needs, resolved once from the environment.
#pragma once

#include <string>

#include "storage/credentials.h"
#include "storage/environment.h"
#include "storage/retry_policy.h"

namespace kiln::storage {

struct S3Settings {
  Credentials credentials;
  std::string region = "us-east-1";
  // Empty: AWS itself, virtual-hosted (https://BUCKET.s3.REGION.amazonaws.com).
  // Otherwise an S3-compatible store's base URL (http://127.0.0.1:9000), path-style.
  std::string endpoint;
  RetryPolicy retry;
};

// AWS_REGION / AWS_DEFAULT_REGION / the profile's region in the config file,
// else us-east-1; AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (or the profile's endpoint_url);
// the retry policy from AWS_RETRY_MODE and AWS_MAX_ATTEMPTS (or the profile's
// retry_mode and max_attempts).
S3Settings resolve_s3_settings(const Environment& env);

// A request target: the URL to send to, and the pieces SigV4 signs.
struct S3Target {
  std::string url;            // scheme://host[:port]/path?query
  std::string host;           // the Host header value
  std::string canonical_uri;  // URI-encoded path
};

// `query` must already be the canonical query string (or empty).
S3Target s3_target(const S3Settings& settings, const std::string& bucket, const std::string& key,
                   const std::string& query);

}  // namespace kiln::storage
