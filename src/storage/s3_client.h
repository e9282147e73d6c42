// S3's REST API over libcurl: objects, listings, multipart primitives,
// with SigV4 signing, retries (storage/retry_policy.h) and errors that say
// what went wrong.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "storage/http.h"
#include "storage/s3_settings.h"
#include "storage/s3_uri.h"

namespace kiln::storage {

// A failed S3 request: HTTP status (0 for a transport failure) and S3's error Code.
class S3Error : public Error {
 public:
  S3Error(const std::string& message, long status, std::string code)
      : Error(message), status_(status), code_(std::move(code)) {}
  long status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  long status_;
  std::string code_;
};

struct ObjectInfo {
  std::string key;
  int64_t size = 0;
  std::string etag;  // without the quotes
};

class S3Client {
 public:
  // Retries as settings.retry says (the environment's policy, from_environment()).
  explicit S3Client(S3Settings settings);
  S3Client(S3Settings settings, RetryPolicy retry);
  // Settings from the process environment and ~/.aws files.
  static S3Client from_environment();

  const S3Settings& settings() const { return settings_; }
  const RetryPolicy& retry_policy() const { return retry_; }

  std::optional<ObjectInfo> head_object(const S3Uri& uri);
  std::string get_object(const S3Uri& uri);
  // Writes bytes [begin, begin+length) of the object to fd at file_offset;
  // throws unless exactly `length` bytes arrived. A connection cut mid-body is
  // resumed from the first missing byte, not from `begin`. With `if_match`
  // (an ETag) every request carries If-Match: the object changing under a
  // download (S3's 412) throws S3Error "ObjectChanged", never retried.
  void get_object_range_to_fd(const S3Uri& uri, int64_t begin, int64_t length, int fd, int64_t file_offset,
                              const std::string& if_match = {});
  void put_object(const S3Uri& uri, std::string_view body);
  void put_object_from_fd(const S3Uri& uri, int fd, int64_t offset, int64_t length);
  void delete_object(const S3Uri& uri);
  // Every object under `prefix`, following continuation tokens.
  std::vector<ObjectInfo> list_objects(const std::string& bucket, const std::string& prefix);
  void create_bucket(const std::string& bucket);

  std::string create_multipart_upload(const S3Uri& uri);
  // Returns the part's ETag (quoted, as CompleteMultipartUpload wants it).
  std::string upload_part(const S3Uri& uri, const std::string& upload_id, int part_number, int fd, int64_t offset,
                          int64_t length);
  void complete_multipart_upload(const S3Uri& uri, const std::string& upload_id,
                                 const std::vector<std::string>& part_etags);
  void abort_multipart_upload(const S3Uri& uri, const std::string& upload_id);

  // Requests this client has retried (for tests and the summary).
  int64_t retries() const { return retries_; }

 private:
  struct Call {
    std::string method{};
    std::string bucket{};
    std::string key{};
    std::vector<std::pair<std::string, std::string>> query{};
    HeaderList headers{};  // extra headers, signed too
    std::string_view body{};
    int body_fd = -1;
    int64_t body_offset = 0;
    int64_t body_length = 0;
    int sink_fd = -1;
    int64_t sink_offset = 0;
    int64_t sink_limit = -1;
  };
  // Sends with retries; returns a 2xx response or throws S3Error. `attempts`,
  // when given, receives how many times the request was sent.
  HttpResponse execute(const Call& call, int* attempts = nullptr);
  HttpResponse send_once(const Call& call);
  // After a retryable failure: counts the retry, logs it, and (adaptive mode,
  // throttled) makes the client's other requests wait too.
  void note_retry(const Call& call, const HttpResponse& r, const std::string& code, std::chrono::milliseconds delay,
                  int attempt);
  void wait_if_throttled();
  [[noreturn]] void fail(const Call& call, const HttpResponse& response, int attempts = 1,
                         std::chrono::steady_clock::time_point first_sent = {});

  S3Settings settings_;
  RetryPolicy retry_;
  std::atomic<int64_t> retries_{0};
  // Adaptive mode: steady-clock nanoseconds until which no request is sent.
  std::atomic<int64_t> throttled_until_ns_{0};
};

}  // namespace kiln::storage
