#include "storage/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "core/error.h"

namespace kiln::storage {

namespace {
std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Header values are signed trimmed, with inner runs of spaces collapsed.
std::string trim_header_value(const std::string& v) {
  std::string out;
  bool space = false;
  for (char ch : v) {
    if (ch == ' ' || ch == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

HeaderList sorted_lower_headers(const HeaderList& headers) {
  HeaderList h;
  for (const auto& [name, value] : headers) h.emplace_back(lower(name), trim_header_value(value));
  std::sort(h.begin(), h.end());
  return h;
}

std::string signed_header_names(const HeaderList& sorted) {
  std::string names;
  for (const auto& [name, value] : sorted) names += (names.empty() ? "" : ";") + name;
  return names;
}

std::string scope(const SigningRequest& r) {
  return r.amz_date.substr(0, 8) + "/" + r.region + "/" + r.service + "/aws4_request";
}
}  // namespace

std::string hex_encode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), digest, &length) == nullptr) {
    throw_error("HMAC-SHA256 failed in OpenSSL");
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char ch : text) {
    const bool unreserved = std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
    if (unreserved || (keep_slash && ch == '/')) {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

std::string canonical_query_string(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [k, v] : params) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

std::string canonical_request(const SigningRequest& r) {
  const HeaderList headers = sorted_lower_headers(r.headers);
  std::string out = r.method + "\n" + r.canonical_uri + "\n" + r.canonical_query + "\n";
  for (const auto& [name, value] : headers) out += name + ":" + value + "\n";
  out += "\n" + signed_header_names(headers) + "\n" + r.payload_hash;
  return out;
}

std::string string_to_sign(const SigningRequest& r) {
  return "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + scope(r) + "\n" + sha256_hex(canonical_request(r));
}

std::string sigv4_signature(const SigningRequest& r, const Credentials& c) {
  const std::string date_key = hmac_sha256("AWS4" + c.secret_access_key, r.amz_date.substr(0, 8));
  const std::string region_key = hmac_sha256(date_key, r.region);
  const std::string service_key = hmac_sha256(region_key, r.service);
  const std::string signing_key = hmac_sha256(service_key, "aws4_request");
  return hex_encode(hmac_sha256(signing_key, string_to_sign(r)));
}

std::string sigv4_authorization(const SigningRequest& r, const Credentials& c) {
  return "AWS4-HMAC-SHA256 Credential=" + c.access_key_id + "/" + scope(r) +
         ",SignedHeaders=" + signed_header_names(sorted_lower_headers(r.headers)) +
         ",Signature=" + sigv4_signature(r, c);
}

std::string amz_date_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &utc);
  return buf;
}

}  // namespace kiln::storage
