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

// S3 error Codes that mean "try again later" whatever the HTTP status.
bool retryable_code(const std::string& code) {
  return code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" || code == "RequestTimeout" ||
         code == "InternalError" || code == "ServiceUnavailable" || code == "RequestTimeTooSkewed";
}

bool retryable(const HttpResponse& r, const std::string& code) {
  if (r.status == 0) return true;  // connection refused, reset, timed out
  if (r.status >= 500 || r.status == 429) return true;
  return retryable_code(code);
}

// S3 may answer 200 and still fail (CompleteMultipartUpload): an <Error> body.
bool error_in_ok_body(const HttpResponse& r) {
  return r.body.find("<Error>") != std::string::npos && r.body.find("<Code>") != std::string::npos;
}

thread_local std::mt19937 jitter_rng{std::random_device{}()};
}  // namespace

S3Client::S3Client(S3Settings settings, RetryPolicy retry) : settings_(std::move(settings)), retry_(retry) {}

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
  return http_perform(r);
}

HttpResponse S3Client::execute(const Call& call) {
  for (int attempt = 1;; ++attempt) {
    HttpResponse r = send_once(call);
    const bool ok = r.status >= 200 && r.status < 300 && !error_in_ok_body(r);
    if (ok) return r;
    const std::string code = xml_text(r.body, "Code").value_or("");
    if (attempt >= retry_.max_attempts || !retryable(r, code)) fail(call, r);
    ++retries_;
    const auto cap = std::min<int64_t>(retry_.max_delay.count(), retry_.base_delay.count() << (attempt - 1));
    // "Full jitter" keeps parallel workers from retrying in lockstep.
    const auto delay = std::uniform_int_distribution<int64_t>(cap / 2, std::max<int64_t>(cap, 1))(jitter_rng);
    log_debug("s3: ", call.method, " ", S3Uri{call.bucket, call.key}.str(), " failed (",
              r.status == 0 ? r.transport_error : std::to_string(r.status) + " " + code, "), retry ", attempt, " in ",
              delay, " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
}

void S3Client::fail(const Call& call, const HttpResponse& r) {
  const std::string uri = S3Uri{call.bucket, call.key}.str();
  if (r.status == 0) {
    throw S3Error(concat("s3: ", call.method, " ", uri, ": cannot reach ",
                         settings_.endpoint.empty() ? "S3" : settings_.endpoint, ": ", r.transport_error),
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
  throw S3Error(what, r.status, code);
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

void S3Client::get_object_range_to_fd(const S3Uri& uri, int64_t begin, int64_t length, int fd, int64_t file_offset) {
  Call c{.method = "GET", .bucket = uri.bucket, .key = uri.key};
  c.headers.emplace_back("range", concat("bytes=", begin, "-", begin + length - 1));
  c.sink_fd = fd;
  c.sink_offset = file_offset;
  for (int attempt = 1;; ++attempt) {
    const HttpResponse r = execute(c);
    if (r.sink_bytes == length) return;
    // A short body (connection cut mid-stream with a 206 already sent) is retried too.
    if (attempt >= retry_.max_attempts) {
      throw S3Error(concat("s3: GET ", uri.str(), " bytes ", begin, "-", begin + length - 1, ": got ", r.sink_bytes,
                           " bytes, expected ", length),
                    r.status, "IncompleteBody");
    }
    ++retries_;
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
  execute(c);
}

void S3Client::abort_multipart_upload(const S3Uri& uri, const std::string& upload_id) {
  Call c{.method = "DELETE", .bucket = uri.bucket, .key = uri.key};
  c.query = {{"uploadId", upload_id}};
  execute(c);
}

}  // namespace kiln::storage
