#include "storage/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace kiln::storage {

namespace {
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw_error("libcurl initialization failed");
  });
}

// The thread's handle; curl_easy_reset between requests keeps its connection cache.
class ThreadHandle {
 public:
  ThreadHandle() {
    global_init();
    handle_ = curl_easy_init();
    if (handle_ == nullptr) throw_error("curl_easy_init failed");
  }
  ~ThreadHandle() { curl_easy_cleanup(handle_); }
  ThreadHandle(const ThreadHandle&) = delete;
  ThreadHandle& operator=(const ThreadHandle&) = delete;
  CURL* get() { return handle_; }

 private:
  CURL* handle_;
};

CURL* thread_handle() {
  thread_local ThreadHandle handle;
  return handle.get();
}

struct Exchange {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  CURL* curl = nullptr;
  int64_t body_sent = 0;
  bool to_sink = false;
  bool decided = false;
  bool source_error = false;
  std::string sink_error{};
};

size_t read_body(char* buffer, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const HttpRequest& r = *x->request;
  const size_t want = size * count;
  if (r.body_fd < 0) {
    const size_t n = std::min<size_t>(want, r.body.size() - static_cast<size_t>(x->body_sent));
    std::memcpy(buffer, r.body.data() + x->body_sent, n);
    x->body_sent += static_cast<int64_t>(n);
    return n;
  }
  const size_t n = std::min<size_t>(want, static_cast<size_t>(r.body_length - x->body_sent));
  if (n == 0) return 0;
  const ssize_t got = ::pread(r.body_fd, buffer, n, r.body_offset + x->body_sent);
  if (got <= 0) {  // the file shrank or failed under us
    x->source_error = true;
    return CURL_READFUNC_ABORT;
  }
  x->body_sent += got;
  return static_cast<size_t>(got);
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  if (!x->decided) {
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    x->to_sink = x->request->sink_fd >= 0 && status >= 200 && status < 300;
    x->decided = true;
  }
  if (!x->to_sink) {
    x->response->body.append(data, n);
    return n;
  }
  if (x->request->sink_limit >= 0 && x->response->sink_bytes + static_cast<int64_t>(n) > x->request->sink_limit) {
    x->sink_error = concat("the server sent more than the ", x->request->sink_limit, " bytes asked for");
    return 0;
  }
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(x->request->sink_fd, data + done, n - done,
                               x->request->sink_offset + x->response->sink_bytes + static_cast<int64_t>(done));
    if (w < 0) {
      x->sink_error = std::string("write failed: ") + std::strerror(errno);
      return 0;  // aborts the transfer
    }
    done += static_cast<size_t>(w);
  }
  x->response->sink_bytes += static_cast<int64_t>(n);
  return n;
}

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  std::string line(data, n);
  if (line.starts_with("HTTP/")) {
    x->response->headers.clear();  // a new response (after 100 Continue)
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string name = line.substr(0, colon);
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string value = line.substr(colon + 1);
  const size_t b = value.find_first_not_of(" \t");
  const size_t e = value.find_last_not_of(" \t\r\n");
  value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  x->response->headers[name] = value;
  return n;
}
}  // namespace

HttpResponse http_perform(const HttpRequest& request) {
  CURL* curl = thread_handle();
  curl_easy_reset(curl);
  HttpResponse response;
  Exchange x{.request = &request, .response = &response, .curl = curl};

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
  // A stalled connection (under 1 KiB/s for 60 s) fails and is retried,
  // rather than hanging a transfer for ever.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);

  const int64_t body_size = request.body_fd >= 0 ? request.body_length : static_cast<int64_t>(request.body.size());
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    // Both stream through the read callback with a known length, so neither
    // is sent chunked (S3 rejects chunked bodies without aws-chunked signing).
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &x);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    if (request.method == "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  // 100-continue costs a round trip per part on every upload; S3 does not need it.
  headers = curl_slist_append(headers, "Expect:");
  headers = curl_slist_append(headers, "Content-Type:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    response.status = 0;
    response.transport_error = x.sink_error.empty() ? curl_easy_strerror(rc) : x.sink_error;
    response.transport_retryable = x.sink_error.empty() && !x.source_error && rc != CURLE_URL_MALFORMAT &&
                                   rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_PEER_FAILED_VERIFICATION &&
                                   rc != CURLE_SSL_CACERT_BADFILE && rc != CURLE_SSL_CERTPROBLEM;
    if (x.source_error) response.transport_error = "the source file shrank or could not be read during the upload";
    return response;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace kiln::storage
