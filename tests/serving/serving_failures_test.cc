// What clients see when requests are refused or fail, through the real routes
// and HTTP server in this process, over the demo model's engine on a backend
// that can be held (a step that does not finish, so the queue fills or the
// service drains at the test's pace) or made to fail (an engine step that
// throws, before or after a stream has started). Clients are curl.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "http_test_support.h"
#include "serving/completion.h"
#include "serving/http_server.h"
#include "serving/lmi_api.h"
#include "serving/model_server.h"
#include "serving/openai_api.h"
#include "support/cli_engine.h"
#include "support/temp_dir.h"

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;
using testing::CurlLineReader;
using ::testing::HasSubstr;
using testing::run_curl;

const fs::path kDemo = fs::path(KILN_SOURCE_DIR) / "demo" / "model";

// The CPU backend, with a gate before each step and a fault on request.
class FaultyBackend final : public runtime::Backend {
 public:
  FaultyBackend() : inner_(runtime::make_cpu_backend()) {}

  // Steps wait at the gate while it is closed.
  void close_gate() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      closed_ = false;
    }
    changed_.notify_all();
  }
  // Whether a step is waiting at the closed gate (within 5 s).
  bool step_held() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [&] { return held_; });
  }
  // The `n`-th step from now throws (1: the next one).
  void fail_step(int64_t n) { fail_at_ = steps_ + n; }

  std::string_view name() const override { return "faulty-cpu"; }
  runtime::Weight upload(const TensorView& host) override { return inner_->upload(host); }
  std::unique_ptr<runtime::Buffer> allocate(int64_t floats) override { return inner_->allocate(floats); }
  void allocate_kv(const runtime::KvCacheConfig& config, int rank) override { inner_->allocate_kv(config, rank); }
  int64_t kv_bytes_per_value() const override { return inner_->kv_bytes_per_value(); }
  std::optional<int64_t> kv_cache_budget(double fraction) const override { return inner_->kv_cache_budget(fraction); }
  void prepare_step(const runtime::StepInput& step) override {
    const int64_t n = ++steps_;
    {
      std::unique_lock lock(mutex_);
      held_ = closed_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !closed_; });
      held_ = false;
    }
    if (n == fail_at_) throw std::runtime_error("injected backend fault");
    inner_->prepare_step(step);
  }
  void run_recorded(int64_t key, const std::function<void()>& ops) override { inner_->run_recorded(key, ops); }
  void embed(const runtime::Weight& table, float* out) override { inner_->embed(table, out); }
  void add_positions(const runtime::Weight& table, float* x) override { inner_->add_positions(table, x); }
  void norm(NormKind kind, const float* x, const runtime::Weight& weight, const runtime::Weight* bias, double eps,
            int64_t rows, float* out) override {
    inner_->norm(kind, x, weight, bias, eps, rows, out);
  }
  void linear(const float* x, int64_t rows, const runtime::Weight& w, const runtime::Weight* bias, float* out,
              bool accumulate) override {
    inner_->linear(x, rows, w, bias, out, accumulate);
  }
  void norm_linear(NormKind kind, const float* x, const runtime::Weight& norm_weight, const runtime::Weight* norm_bias,
                   double eps, int64_t rows, const runtime::Weight& w, const runtime::Weight* bias, float* normed,
                   float* out) override {
    inner_->norm_linear(kind, x, norm_weight, norm_bias, eps, rows, w, bias, normed, out);
  }
  void attention(int rank, int64_t layer, float* qkv, const std::vector<int32_t>& positions,
                 const std::vector<runtime::StepSequence>& seqs, const runtime::KvCacheConfig& kv,
                 const runtime::AttentionParams& p, float* out) override {
    inner_->attention(rank, layer, qkv, positions, seqs, kv, p, out);
  }
  void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) override {
    inner_->gated_activation(act, gate_up, rows, inner, out);
  }
  void activation(Activation act, float* x, int64_t n) override { inner_->activation(act, x, n); }
  void add(float* x, const float* y, int64_t n) override { inner_->add(x, y, n); }
  void fill(float* x, float value, int64_t n) override { inner_->fill(x, value, n); }
  void scale_add_rows(const float* src, const std::vector<int64_t>& rows, const std::vector<float>& weights,
                      int64_t cols, float* out) override {
    inner_->scale_add_rows(src, rows, weights, cols, out);
  }
  void add_bias(float* x, const runtime::Weight& bias, int64_t rows) override { inner_->add_bias(x, bias, rows); }
  void route_experts(const float* router_logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize,
                     float* weights, float* used) override {
    inner_->route_experts(router_logits, rows, experts, top_k, normalize, weights, used);
  }
  void linear_if(const float* flag, const float* x, int64_t rows, const runtime::Weight& w, const runtime::Weight* bias,
                 float* out, bool accumulate) override {
    inner_->linear_if(flag, x, rows, w, bias, out, accumulate);
  }
  void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows,
                    int64_t cols, float* x) override {
    inner_->scale_add_if(flag, src, weights, stride, rows, cols, x);
  }
  void gather_rows(const float* x, const std::vector<int64_t>& rows, int64_t cols, float* out) override {
    inner_->gather_rows(x, rows, cols, out);
  }
  void gather_logit_rows(const float* x, int64_t cols, float* out) override { inner_->gather_logit_rows(x, cols, out); }
  void copy_to_host(const float* device, int64_t n, float* host) override { inner_->copy_to_host(device, n, host); }
  void logits_summary(const float* logits, int64_t rows, int64_t vocab) override {
    inner_->logits_summary(logits, rows, vocab);
  }
  void read_logits_summary(int32_t* argmax, float* max_logit, float* log_sum_exp) override {
    inner_->read_logits_summary(argmax, max_logit, log_sum_exp);
  }
  void sample(const float* logits, int64_t vocab, const std::vector<runtime::SampleRow>& choices, int32_t* tokens,
              float* chosen_logits) override {
    inner_->sample(logits, vocab, choices, tokens, chosen_logits);
  }

 private:
  std::unique_ptr<runtime::Backend> inner_;
  std::atomic<int64_t> steps_{0}, fail_at_{-1};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool closed_ = false, held_ = false;
};

// A prompt the demo model continues greedily for hundreds of tokens.
const std::string kLongRunning = [] {
  std::string s;
  for (int i = 0; i < 30; ++i) s += " ha";
  return s;
}();

std::string quoted(const nlohmann::json& body) {
  std::string s = body.dump(), out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A response as curl -i shows it: the status, the head and the body.
struct Answer {
  int status = 0;
  std::string head, body;
};

Answer split_answer(const std::string& output) {
  Answer a;
  const auto end = output.find("\r\n\r\n");
  a.head = output.substr(0, end);
  a.body = end == std::string::npos ? "" : output.substr(end + 4);
  if (a.head.rfind("HTTP/1.1 ", 0) == 0) a.status = std::atoi(a.head.c_str() + 9);
  return a;
}

class ServingFailuresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_TRUE(test::build_with_cli(kDemo, dir_->path() / "engine", "--max-input-len 256 --max-output-len 256"));
  }
  static void TearDownTestSuite() { delete dir_; }

  void start(EngineServiceOptions options = {}) {
    engine_ =
        std::make_unique<engine::Engine>(engine::Engine::open(dir_->path() / "engine", engine::host_cpu_target()));
    tokenizer_ = tokenizer::Tokenizer::load(dir_->path() / "engine" / "tokenizer");
    chat_ = tokenizer::ChatSettings::load(dir_->path() / "engine" / "tokenizer");
    service_ = std::make_unique<EngineService>(*engine_, backend_, options);
    context_ = std::make_unique<ServingContext>(
        ServingContext{*service_, *tokenizer_, chat_, metrics_, "kiln-demo", int64_t{256}});
    HttpServerOptions http;
    http.port = 0;
    http.threads = 8;
    server_ = std::make_unique<HttpServer>(http);
    auto add = [&](const std::string& path, void (*handler)(ServingContext&, const HttpRequest&, HttpResponse&)) {
      server_->route("POST", path, [this, path, handler](const HttpRequest& req, HttpResponse& res) {
        answer_route(metrics_, path, res, [&] { handler(*context_, req, res); });
      });
    };
    add("/invocations", handle_invocations);
    add("/v1/completions", handle_completions);
    add("/v1/chat/completions", handle_chat_completions);
    server_->start();
  }
  void TearDown() override {
    backend_.open_gate();
    if (server_) server_->stop(std::chrono::seconds(5));
    server_.reset();
    service_.reset();
  }
  std::string url(const std::string& path) const { return testing::url(server_->port(), path); }
  Answer post(const std::string& path, const nlohmann::json& body) const {
    return split_answer(run_curl("-i -N -X POST -d " + quoted(body) + " " + url(path)).output);
  }
  // A request that holds the engine: its first step waits at the closed gate.
  std::unique_ptr<CurlLineReader> hold_the_engine() {
    backend_.close_gate();
    auto reader = std::make_unique<CurlLineReader>(
        "-X POST -d " +
        quoted({{"inputs", kLongRunning}, {"parameters", {{"max_new_tokens", 200}}}, {"stream", true}}) + " " +
        url("/invocations"));
    EXPECT_TRUE(backend_.step_held());
    return reader;
  }
  JobRequest job_request() const {
    JobRequest r;
    r.prompt = tokenizer_->encode(kLongRunning, true);
    r.max_new_tokens = 8;
    return r;
  }

  static test::TempDir* dir_;
  FaultyBackend backend_;
  Metrics metrics_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  tokenizer::ChatSettings chat_;
  std::unique_ptr<EngineService> service_;
  std::unique_ptr<ServingContext> context_;
  std::unique_ptr<HttpServer> server_;
};
test::TempDir* ServingFailuresTest::dir_ = nullptr;

// Defect: a refused streaming request was answered 200, its error in the
// stream's body, without Retry-After, and as bare JSON in an SSE stream.
TEST_F(ServingFailuresTest, StreamsRefusedWhenTheQueueIsFullGet503WithRetryAfter) {
  EngineServiceOptions options;
  options.max_batch_size = 1;
  options.max_queue = 1;
  start(options);
  auto running = hold_the_engine();
  auto waiting = service_->submit(job_request());  // fills the queue of one
  ASSERT_NE(waiting, nullptr);
  for (const auto& [path, body] :
       {std::pair<std::string, nlohmann::json>{"/invocations", {{"inputs", "Hello"}, {"stream", true}}},
        {"/v1/completions", {{"prompt", "Hello"}, {"stream", true}}},
        {"/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"stream", true}}}}) {
    const Answer a = post(path, body);
    EXPECT_EQ(a.status, 503) << path << "\n" << a.head << a.body;
    EXPECT_THAT(a.head, HasSubstr("Retry-After: 1")) << path;
    EXPECT_THAT(a.head, HasSubstr("Content-Type: application/json")) << path;
    const auto error = nlohmann::json::parse(a.body, nullptr, false);
    EXPECT_EQ(error["code"], 503) << path << a.body;
    EXPECT_THAT(error["error"].get<std::string>(), HasSubstr("queue full")) << path;
  }
  service_->cancel(waiting);
  backend_.open_gate();
  EXPECT_THAT(running->read_rest(), HasSubstr("generated_text"));
}

TEST_F(ServingFailuresTest, StreamsRefusedForTheirPromptGet400) {
  start();
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += " word";  // over the engine's max_input_len 256
  for (const auto& [path, body] :
       {std::pair<std::string, nlohmann::json>{"/invocations", {{"inputs", long_prompt}, {"stream", true}}},
        {"/v1/completions", {{"prompt", long_prompt}, {"stream", true}}}}) {
    const Answer a = post(path, body);
    EXPECT_EQ(a.status, 400) << path << "\n" << a.head << a.body;
    EXPECT_THAT(nlohmann::json::parse(a.body, nullptr, false)["error"].get<std::string>(), HasSubstr("max_input_len"))
        << path;
  }
}

// Defect: during the drain after SIGTERM requests were told "queue full".
TEST_F(ServingFailuresTest, RequestsDuringTheDrainAreToldTheServerIsShuttingDown) {
  start();
  auto running = hold_the_engine();
  auto drained = std::async(std::launch::async, [&] { service_->drain(std::chrono::seconds(5)); });
  for (int i = 0; i < 500 && service_->accepting(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  for (const bool stream : {false, true}) {
    const Answer a = post("/invocations", {{"inputs", "Hello"}, {"stream", stream}});
    EXPECT_EQ(a.status, 503) << a.head << a.body;
    EXPECT_THAT(a.head, HasSubstr("Retry-After: 1"));
    const std::string error = nlohmann::json::parse(a.body, nullptr, false)["error"].get<std::string>();
    EXPECT_THAT(error, HasSubstr("shutting down"));
    EXPECT_THAT(error, ::testing::Not(HasSubstr("queue")));
  }
  backend_.open_gate();
  EXPECT_THAT(running->read_rest(), HasSubstr("generated_text"));  // in-flight work still finishes
  drained.get();
}

// Defect: a failure after the stream began wrote bare JSON, in no route's format.
TEST_F(ServingFailuresTest, AFailureMidStreamEndsJsonLinesWithAnErrorLine) {
  start();
  backend_.fail_step(4);  // the prompt's step and two more tokens succeed
  const Answer a =
      post("/invocations",
           {{"inputs", kLongRunning}, {"parameters", {{"max_new_tokens", 100}, {"details", true}}}, {"stream", true}});
  EXPECT_EQ(a.status, 200) << a.head;  // the head was sent with the first token
  std::vector<nlohmann::json> lines;
  std::stringstream body(a.body);
  for (std::string line; std::getline(body, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_GE(lines.size(), 2u) << a.body;
  int tokens = 0;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) tokens += lines[i].contains("token");
  EXPECT_EQ(tokens, 3) << a.body;
  const auto& last = lines.back();
  EXPECT_EQ(last["details"]["finish_reason"], "error") << last.dump();
  EXPECT_EQ(last["details"]["generated_tokens"], 3);
  EXPECT_EQ(last["code"], 500);
  EXPECT_THAT(last["error"].get<std::string>(), HasSubstr("injected backend fault"));
  EXPECT_TRUE(last.contains("generated_text"));
}

TEST_F(ServingFailuresTest, AFailureMidStreamEndsServerSentEventsWithAnErrorEventAndDone) {
  start();
  for (const auto& [path, body] :
       {std::pair<std::string, nlohmann::json>{"/v1/completions", {{"prompt", kLongRunning}, {"max_tokens", 100}}},
        {"/v1/chat/completions",
         {{"messages", {{{"role", "user"}, {"content", kLongRunning}}}}, {"max_tokens", 100}}}}) {
    backend_.fail_step(4);
    nlohmann::json streamed = body;
    streamed["stream"] = true;
    streamed["temperature"] = 0;
    const Answer a = post(path, streamed);
    EXPECT_EQ(a.status, 200) << path << a.head;
    std::vector<std::string> events;
    std::stringstream lines(a.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      ASSERT_EQ(line.rfind("data: ", 0), 0u) << path << ": every line is an event's data: " << line;
      events.push_back(line.substr(6));
    }
    ASSERT_GE(events.size(), 3u) << a.body;
    EXPECT_EQ(events.back(), "[DONE]") << path;
    const auto error = nlohmann::json::parse(events[events.size() - 2]);
    EXPECT_EQ(error["error"]["code"], 500) << error.dump();
    EXPECT_EQ(error["error"]["type"], "server_error");
    EXPECT_THAT(error["error"]["message"].get<std::string>(), HasSubstr("injected backend fault"));
    for (std::size_t i = 0; i + 2 < events.size(); ++i) {
      EXPECT_TRUE(nlohmann::json::parse(events[i]).contains("choices")) << events[i];
    }
  }
}

TEST_F(ServingFailuresTest, AFailureBeforeTheFirstTokenGetsA500) {
  start();
  for (const auto& [path, body] :
       {std::pair<std::string, nlohmann::json>{"/invocations", {{"inputs", kLongRunning}, {"stream", true}}},
        {"/v1/completions", {{"prompt", kLongRunning}, {"stream", true}}},
        {"/v1/completions", {{"prompt", kLongRunning}}}}) {
    backend_.fail_step(1);
    const Answer a = post(path, body);
    EXPECT_EQ(a.status, 500) << path << "\n" << a.head << a.body;
    EXPECT_THAT(a.head, HasSubstr("Content-Type: application/json"));
    EXPECT_THAT(nlohmann::json::parse(a.body, nullptr, false)["error"].get<std::string>(),
                HasSubstr("injected backend fault"));
  }
}

// A server default for max_new_tokens beyond the engine's max_output_len would
// refuse every request that does not say: the default is capped instead.
TEST_F(ServingFailuresTest, TheDefaultMaxNewTokensIsCappedAtTheEnginesMaxOutputLen) {
  start();
  context_->default_max_new_tokens = 1000;  // the engine's max_output_len is 256
  const Answer a = post("/invocations", {{"inputs", kLongRunning}, {"parameters", {{"details", true}}}});
  ASSERT_EQ(a.status, 200) << a.head << a.body;
  const auto out = nlohmann::json::parse(a.body);
  EXPECT_EQ(out["details"]["generated_tokens"], 256);
  EXPECT_EQ(out["details"]["finish_reason"], "length");
}

}  // namespace
}  // namespace kiln::serving
