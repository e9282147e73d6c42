// AWS Signature Version 4 for S3 requests (header-based, HMAC-SHA256).
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/credentials.h"

namespace kiln::storage {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The payload hash for bodies that are streamed rather than hashed up front.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct SigningRequest {
  std::string method;
  std::string canonical_uri;    // already URI-encoded, as sent
  std::string canonical_query;  // already canonical (see canonical_query_string)
  HeaderList headers;           // every header to sign (host, x-amz-*, range, ...)
  std::string payload_hash;     // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
  std::string amz_date;         // YYYYMMDD'T'HHMMSS'Z'
  std::string region;
  std::string service = "s3";
};

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw bytes
std::string hex_encode(std::string_view bytes);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters kept,
// everything else %XX (upper case); '/' kept when encoding a path.
std::string uri_encode(std::string_view text, bool keep_slash);
// key=value pairs encoded, sorted by key, joined with '&'.
std::string canonical_query_string(std::vector<std::pair<std::string, std::string>> params);

std::string canonical_request(const SigningRequest& r);
std::string string_to_sign(const SigningRequest& r);
std::string sigv4_signature(const SigningRequest& r, const Credentials& c);
// The value of the Authorization header.
std::string sigv4_authorization(const SigningRequest& r, const Credentials& c);

// The current UTC time as x-amz-date wants it.
std::string amz_date_now();

}  // namespace kiln::storage
