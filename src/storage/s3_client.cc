#include "storage/s3_client.h"

#include <random>
#include <thread>

#include "core/log.h"
#include "storage/xml.h"

namespace kiln::storage {

namespace {
std::string strip_quotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string object_name(const std::string& bucket, const std::string& key) {
  return key.empty() ? "bucket '" + bucket + "'" : "key '" + key + "' in bucket '" + bucket + "'";
}

// S3 error Codes that mean "slow down": retried, and in adaptive mode they
// hold back every request of the client.
bool throttling_code(const std::string& code) {
  return code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" || code == "RequestThrottled" ||
         code == "TooManyRequestsException" || code == "RequestLimitExceeded";
}

bool throttled(const HttpResponse& r, const std::string& code) { return r.status == 429 || throttling_code(code); }

// What is worth trying again: a failed connection (refused, reset, timed out,
// no answer), 5xx, 429, throttling codes and RequestTimeout (a 400 S3 sends
// when the body came too slowly). Not other 4xx: 403, 404, 400 stay failed.
bool retryable(const HttpResponse& r, const std::string& code) {
  if (r.status == 0) return r.transport_retryable;
  if (r.status >= 500 || r.status == 429) return true;
  return throttling_code(code) || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

// S3 may answer 200 and still fail (CompleteMultipartUpload): an <Error> body.
bool error_in_ok_body(const HttpResponse& r) {
  return r.body.find("<Error>") != std::string::npos && r.body.find("<Code>") != std::string::npos;
}

thread_local std::mt19937 jitter_rng{std::random_device{}()};

double jitter_unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(jitter_rng); }

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string describe(const HttpResponse& r, const std::string& code) {
  return r.status == 0 ? r.transport_error : std::to_string(r.status) + (code.empty() ? "" : " " + code);
}
}  // namespace

S3Client::S3Client(S3Settings settings) : settings_(std::move(settings)), retry_(settings_.retry) {}

S3Client::S3Client(S3Settings settings, RetryPolicy retry) : settings_(std::move(settings)), retry_(retry) {
  settings_.retry = retry;
}

S3Client S3Client::from_environment() { return S3Client(resolve_s3_settings(process_environment())); }

HttpResponse S3Client::send_once(const Call& call) {
  const std::string query = canonical_query_string(call.query);
  const S3Target target = s3_target(settings_, call.bucket, call.key, query);
  const bool streamed = call.body_fd >= 0;
  // File bodies are streamed unsigned (hashing them would read every byte twice);
  // in-memory bodies are small and signed.
  const std::string payload_hash = streamed ? std::string(kUnsignedPayload) : sha256_hex(call.body);

  SigningRequest s;
  s.method = call.method;
  s.canonical_uri = target.canonical_uri;
  s.canonical_query = query;
  s.payload_hash = payload_hash;
  s.amz_date = amz_date_now();
  s.region = settings_.region;
  s.headers = call.headers;
  s.headers.emplace_back("host", target.host);
  s.headers.emplace_back("x-amz-content-sha256", payload_hash);
  s.headers.emplace_back("x-amz-date", s.amz_date);
  if (!settings_.credentials.session_token.empty()) {
    s.headers.emplace_back("x-amz-security-token", settings_.credentials.session_token);
  }

  HttpRequest r;
  r.method = call.method;
  r.url = target.url;
  r.headers = s.headers;
  r.headers.emplace_back("Authorization", sigv4_authorization(s, settings_.credentials));
  r.body = call.body;
  r.body_fd = call.body_fd;
  r.body_offset = call.body_offset;
  r.body_length = call.body_length;
  r.sink_fd = call.sink_fd;
  r.sink_offset = call.sink_offset;
  r.sink_limit = call.sink_limit;
  return http_perform(r);
}

void S3Client::wait_if_throttled() {
  if (retry_.mode != RetryMode::adaptive) return;
  const int64_t wait = throttled_until_ns_.load() - steady_now_ns();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
}

void S3Client::note_retry(const Call& call, const HttpResponse& r, const std::string& code,
                          std::chrono::milliseconds delay, int attempt) {
  ++retries_;
  if (retry_.mode == RetryMode::adaptive && throttled(r, code)) {
    const int64_t until = steady_now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
    int64_t seen = throttled_until_ns_.load();
    while (seen < until && !throttled_until_ns_.compare_exchange_weak(seen, until)) {
    }
  }
  log_debug("s3: ", call.method, " ", S3Uri{call.bucket, call.key}.str(), " failed (", describe(r, code), "), retry ",
            attempt, " in ", delay.count(), " ms");
}

HttpResponse S3Client::execute(const Call& call, int* attempts) {
  RetrySchedule schedule(retry_);
  const auto first_sent = std::chrono::steady_clock::now();
  for (;;) {
    wait_if_throttled();
    HttpResponse r = send_once(call);
    if (attempts != nullptr) *attempts = schedule.attempts() + 1;
    const bool ok = r.status >= 200 && r.status < 300 && !error_in_ok_body(r);
    if (ok) return r;
    const std::string code = xml_text(r.body, "Code").value_or("");
    if (!retryable(r, code)) fail(call, r, schedule.attempts() + 1, first_sent);
    const std::optional<std::chrono::milliseconds> delay = schedule.next_delay(jitter_unit());
    if (!delay) fail(call, r, schedule.attempts(), first_sent);
    note_retry(call, r, code, *delay, schedule.attempts());
    std::this_thread::sleep_for(*delay);
  }
}

void S3Client::fail(const Call& call, const HttpResponse& r, int attempts,
                    std::chrono::steady_clock::time_point first_sent) {
  const std::string uri = S3Uri{call.bucket, call.key}.str();
  // Past the retry budget, say so: "retried for 61 s" explains a slow failure.
  const std::string gave_up =
      attempts <= 1
          ? std::string()
          : concat(
                " (gave up after ", attempts, " attempts in ",
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - first_sent).count(),
                " s; retry policy: ", retry_mode_name(retry_.mode), ", see AWS_MAX_ATTEMPTS / AWS_RETRY_MODE)");
  if (r.status == 0) {
    throw S3Error(concat("s3: ", call.method, " ", uri, ": cannot reach ",
                         settings_.endpoint.empty() ? "S3" : settings_.endpoint, ": ", r.transport_error, gave_up),
                  0, "");
  }
  std::string code = xml_text(r.body, "Code").value_or("");
  std::string message = xml_text(r.body, "Message").value_or("");
  // HEAD responses carry no body: name the likely code from the status.
  if (code.empty() && r.status == 404) code = call.key.empty() ? "NoSuchBucket" : "NotFound";
  if (code.empty() && r.status == 403) code = "AccessDenied";
  std::string what = concat("s3: ", call.method, " ", uri, " failed: HTTP ", r.status, " ", code,
                            message.empty() ? "" : ": " + message);
  if (code == "NoSuchBucket") {
    what += concat(" (bucket '", call.bucket, "' does not exist)");
  } else if (code == "NoSuchKey" || code == "NotFound") {
    what += concat(" (no ", object_name(call.bucket, call.key), ")");
  } else if (r.status == 403) {
    what += concat(" (access denied to ", object_name(call.bucket, call.key), " with credentials from ",
                   settings_.credentials.source, ", access key ", settings_.credentials.access_key_id, ")");
  }
  throw S3Error(what + gave_up, r.status, code);
}

std::optional<ObjectInfo> S3Client::head_object(const S3Uri& uri) {
  Call c{.method = "HEAD", .bucket = uri.bucket, .key = uri.key};
  try {
    const HttpResponse r = execute(c);
    ObjectInfo info;
    info.key = uri.key;
    info.size = std::stoll(r.header("content-length").empty() ? "0" : r.header("content-length"));
    info.etag = strip_quotes(r.header("etag"));
    return info;
  } catch (const S3Error& e) {
    if (e.status() == 404 && e.code() == "NotFound") return std::nullopt;
    throw;
  }
}

std::string S3Client::get_object(const S3Uri& uri) {
  return execute(Call{.method = "GET", .bucket = uri.bucket, .key = uri.key}).body;
}

void S3Client::get_object_range_to_fd(const S3Uri& uri, int64_t begin, int64_t length, int fd, int64_t file_offset,
                                      const std::string& if_match) {
  int64_t done = 0;  // bytes of the range already in the file
  RetrySchedule schedule(retry_);
  auto first_sent = std::chrono::steady_clock::now();
  for (;;) {
    Call c{.method = "GET", .bucket = uri.bucket, .key = uri.key};
    c.headers.emplace_back("range", concat("bytes=", begin + done, "-", begin + length - 1));
    if (!if_match.empty()) c.headers.emplace_back("if-match", concat("\"", if_match, "\""));
    c.sink_fd = fd;
    c.sink_offset = file_offset + done;
    c.sink_limit = length - done;
    wait_if_throttled();
    const HttpResponse r = send_once(c);
    // Bytes that landed count even when the connection then broke: the retry
    // asks only for the rest of the range.
    done += r.sink_bytes;
    const bool ok = r.status >= 200 && r.status < 300;
    if (done == length && (ok || r.status == 0)) return;
    std::string code;
    if (r.status == 412) {
      throw S3Error(concat("s3: ", uri.str(), " changed while it was being downloaded (its ETag is no longer ",
                           if_match, "): download it again"),
                    412, "ObjectChanged");
    }
    if (!ok) {
      code = xml_text(r.body, "Code").value_or("");
      if (!retryable(r, code)) fail(c, r, schedule.attempts() + 1, first_sent);
    }
    if (r.sink_bytes > 0) {  // progress: the budget starts again
      schedule = RetrySchedule(retry_);
      first_sent = std::chrono::steady_clock::now();
    }
    const std::optional<std::chrono::milliseconds> delay = schedule.next_delay(jitter_unit());
    if (!delay) {
      if (!ok) fail(c, r, schedule.attempts(), first_sent);
      throw S3Error(concat("s3: GET ", uri.str(), " bytes ", begin, "-", begin + length - 1, ": got ", done,
                           " bytes, expected ", length),
                    r.status, "IncompleteBody");
    }
    note_retry(c, r, ok ? std::string("IncompleteBody") : code, *delay, schedule.attempts());
    std::this_thread::sleep_for(*delay);
  }
}

void S3Client::put_object(const S3Uri& uri, std::string_view body) {
  execute(Call{.method = "PUT", .bucket = uri.bucket, .key = uri.key, .body = body});
}

void S3Client::put_object_from_fd(const S3Uri& uri, int fd, int64_t offset, int64_t length) {
  Call c{.method = "PUT", .bucket = uri.bucket, .key = uri.key};
  c.body_fd = fd;
  c.body_offset = offset;
  c.body_length = length;
  execute(c);
}

void S3Client::delete_object(const S3Uri& uri) {
  execute(Call{.method = "DELETE", .bucket = uri.bucket, .key = uri.key});
}

void S3Client::create_bucket(const std::string& bucket) {
  Call c{.method = "PUT", .bucket = bucket};
  std::string body;
  // us-east-1 is the one region that must not be named in the request.
  if (settings_.region != "us-east-1") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
           settings_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  c.body = body;
  execute(c);
}

std::vector<ObjectInfo> S3Client::list_objects(const std::string& bucket, const std::string& prefix) {
  std::vector<ObjectInfo> objects;
  std::string token;
  for (int page = 0;; ++page) {
    Call c{.method = "GET", .bucket = bucket};
    c.query = {{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    const HttpResponse r = execute(c);
    for (std::string_view contents : xml_elements(r.body, "Contents")) {
      ObjectInfo info;
      info.key = xml_text(contents, "Key").value_or("");
      info.size = std::stoll(xml_text(contents, "Size").value_or("0"));
      info.etag = strip_quotes(xml_text(contents, "ETag").value_or(""));
      objects.push_back(std::move(info));
    }
    if (xml_text(r.body, "IsTruncated").value_or("false") != "true") break;
    token = xml_text(r.body, "NextContinuationToken").value_or("");
    if (token.empty()) {
      throw_error("s3: listing s3://", bucket, "/", prefix, ": truncated page ", page, " without a continuation token");
    }
  }
  return objects;
}

std::string S3Client::create_multipart_upload(const S3Uri& uri) {
  Call c{.method = "POST", .bucket = uri.bucket, .key = uri.key};
  c.query = {{"uploads", ""}};
  const HttpResponse r = execute(c);
  const std::string id = xml_text(r.body, "UploadId").value_or("");
  if (id.empty()) throw_error("s3: CreateMultipartUpload for ", uri.str(), " returned no UploadId");
  return id;
}

std::string S3Client::upload_part(const S3Uri& uri, const std::string& upload_id, int part_number, int fd,
                                  int64_t offset, int64_t length) {
  Call c{.method = "PUT", .bucket = uri.bucket, .key = uri.key};
  c.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  c.body_fd = fd;
  c.body_offset = offset;
  c.body_length = length;
  const HttpResponse r = execute(c);
  const std::string etag = r.header("etag");
  if (etag.empty()) throw_error("s3: UploadPart ", part_number, " of ", uri.str(), " returned no ETag");
  return etag;
}

void S3Client::complete_multipart_upload(const S3Uri& uri, const std::string& upload_id,
                                         const std::vector<std::string>& part_etags) {
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (std::size_t i = 0; i < part_etags.size(); ++i) {
    std::string etag = part_etags[i];
    body += concat("<Part><PartNumber>", i + 1, "</PartNumber><ETag>", etag, "</ETag></Part>");
  }
  body += "</CompleteMultipartUpload>";
  Call c{.method = "POST", .bucket = uri.bucket, .key = uri.key, .body = body};
  c.query = {{"uploadId", upload_id}};
  int attempts = 0;
  try {
    execute(c, &attempts);
  } catch (const S3Error& e) {
    // A retried Complete whose first try did complete (the answer was lost)
    // finds the upload gone: the object, with as many parts, is the proof.
    if (attempts <= 1 || e.code() != "NoSuchUpload") throw;
    const std::optional<ObjectInfo> object = head_object(uri);
    if (!object || !object->etag.ends_with(concat("-", part_etags.size()))) throw;
    log_debug("s3: CompleteMultipartUpload of ", uri.str(), " had completed before its retry");
  }
}

void S3Client::abort_multipart_upload(const S3Uri& uri, const std::string& upload_id) {
  Call c{.method = "DELETE", .bucket = uri.bucket, .key = uri.key};
  c.query = {{"uploadId", upload_id}};
  execute(c);
}

}  // namespace kiln::storage
