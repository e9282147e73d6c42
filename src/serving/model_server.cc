#include "serving/model_server.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <sstream>

#include "compiler/compiler.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "engine/checksum.h"
#include "engine/engine_reader.h"
#include "runtime/backend_factory.h"
#include "serving/completion.h"
#include "serving/http_server.h"
#include "serving/http_termination_signal.h"
#include "serving/lmi_api.h"
#include "serving/openai_api.h"
#include "storage/model_store.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kiln::serving {
namespace fs = std::filesystem;

namespace {

// A name for the cached engine that changes whenever the checkpoint's files
// or the options that shape the engine change.
std::string cache_key(const fs::path& model, const ServingOptions& o) {
  std::ostringstream d;
  d << kVersion << '|' << fs::absolute(model).lexically_normal().string() << '|'
    << (o.dtype ? dtype_name(*o.dtype) : "auto") << '|' << o.tensor_parallel_degree << '|'
    << o.max_input_len.value_or(0) << '|' << o.max_output_len.value_or(0) << '|' << o.max_num_tokens.value_or(0) << '|'
    << o.max_rolling_batch_size << '|' << runtime::resolve_target(o.target).describe() << '|'
    << engine::quantization_name(o.quantization) << '|' << o.kv_cache_dtype;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(model)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    d << '|' << f.filename().string() << ':' << fs::file_size(f) << ':'
      << fs::last_write_time(f).time_since_epoch().count();
  }
  engine::Checksum64 sum;
  const std::string text = d.str();
  sum.update(text.data(), text.size());
  std::ostringstream name;
  name << model.filename().string() << '-' << std::hex << sum.digest();
  return name.str();
}

}  // namespace

void answer_route(Metrics& metrics, const std::string& route, HttpResponse& response,
                  const std::function<void()>& body) {
  int status = 200;
  std::string message;
  try {
    body();
  } catch (const ApiError& e) {
    status = e.status;
    message = e.message;
  } catch (const Error& e) {
    status = 400;
    message = e.what();
  } catch (const std::exception& e) {
    status = 500;
    message = std::string("internal error: ") + e.what();
  }
  metrics.request_done(route, status);
  if (status == 200) return;
  if (response.started()) {
    // Headers are gone. The routes end their own streams in their formats
    // (stream_completion); a stream still open gets a last JSON line.
    if (response.streaming()) {
      response.write_chunk(nlohmann::json{{"error", message}, {"code", status}}.dump() + "\n");
      response.end_stream();
    }
    return;
  }
  HttpHeaders extra;
  if (status == 503 || status == 429) extra.emplace_back("Retry-After", "1");
  response.send_json(status, {{"error", message}, {"code", status}}, extra);
}

// An s3:// model arrives through the download cache (reused while the
// objects are unchanged). An engine's blobs are verified here, before it is
// used, rather than while it loads: a cached copy damaged on disk since it was
// downloaded is then replaced by a fresh download instead of failing the start.
fs::path fetch_s3_model(const std::string& uri, const ServingOptions& o, bool* verified) {
  auto client = storage::S3Client::from_environment();
  const auto prefix = storage::S3Uri::parse(uri);
  fs::path dir = storage::fetch_prefix_cached(client, prefix, o.cache_dir);
  if (!o.verify_weights || !fs::exists(dir / "engine.json")) return dir;
  try {
    engine::Engine::open(dir, std::nullopt).verify_checksums();
  } catch (const Error& e) {
    log_warn("the cached copy ", dir.string(), " of ", uri, " is damaged (", e.what(), "); downloading it again");
    fs::remove_all(dir);
    dir = storage::fetch_prefix_cached(client, prefix, o.cache_dir);
    engine::Engine::open(dir, std::nullopt).verify_checksums();
  }
  *verified = true;
  return dir;
}

fs::path resolve_engine(const fs::path& model_path, const ServingOptions& o, bool* verified) {
  fs::path model = model_path;
  if (model.string().starts_with("s3://")) model = fetch_s3_model(model.string(), o, verified);
  if (!fs::is_directory(model)) throw_error("model_id ", model.string(), " is not a directory");
  if (fs::exists(model / "engine.json")) return model;
  if (!fs::exists(model / "config.json")) {
    throw_error("model_id ", model.string(), " is neither a kiln engine (engine.json) nor a HuggingFace checkpoint ",
                "(config.json)");
  }
  const fs::path cached = o.cache_dir / cache_key(model, o);
  if (fs::exists(cached / "engine.json")) {
    log_info("reusing the engine compiled earlier for ", model.string(), ": ", cached.string());
    return cached;
  }
  log_info("compiling ", model.string(), " just in time into ", cached.string());
  compiler::BuildOptions b;
  b.model = model;
  b.output = cached;
  b.dtype = o.dtype;
  b.quantization = o.quantization;
  b.kv_cache_dtype = compiler::parse_kv_cache_dtype(o.kv_cache_dtype);
  b.target = runtime::resolve_target(o.target);
  b.tensor_parallel = o.tensor_parallel_for(0);
  b.max_batch_size = o.max_rolling_batch_size;
  b.max_input_len = o.max_input_len;
  b.max_output_len = o.max_output_len;
  b.max_num_tokens = o.max_num_tokens;
  b.force = true;
  b.kernel_tuner = [](const engine::Manifest& m, std::stop_token stop) {
    return runtime::tune_kernel_choices(m, /*tune=*/true, stop);
  };
  fs::create_directories(o.cache_dir);
  compiler::build_engine(b);
  return cached;
}

int run_model_server(const ServingOptions& o, const fs::path& default_model) {
  TerminationSignal termination;  // before anything slow, so SIGTERM during loading is honoured too
  HttpServer::Options http;
  http.host = o.host;
  http.port = o.port;
  // Every running stream holds a worker: room for a full batch, plus quick requests (ping, metrics).
  http.threads = o.max_rolling_batch_size + 8;
  // One client (a benchmark, or a proxy in front of the server) may keep every
  // worker busy and as many requests waiting for one.
  http.max_connections_per_address = std::max(http.max_connections_per_address, 2 * http.threads);
  HttpServer server(http);
  Metrics metrics;

  // Routes answer 503 until the model is loaded; the pointer is set once.
  std::atomic<ServingContext*> ready{nullptr};
  auto with_model = [&](const std::string& route, auto handler) {
    return [&, route, handler](const HttpRequest& req, HttpResponse& res) {
      answer_route(metrics, route, res, [&] {
        ServingContext* ctx = ready.load();
        if (!ctx) throw ApiError{503, "the model is still loading"};
        handler(*ctx, req, res);
      });
    };
  };
  // 503 while loading and while draining after SIGTERM, so that load balancers send elsewhere.
  server.route("GET", "/ping", [&](const HttpRequest&, HttpResponse& res) {
    const ServingContext* ctx = ready.load();
    if (!ctx) {
      res.send_json(503, {{"status", "loading"}}, {{"Retry-After", "1"}});
    } else if (!ctx->service.accepting()) {
      res.send_json(503, {{"status", "shutting down"}}, {{"Retry-After", "1"}});
    } else {
      res.send_json(200, {{"status", "healthy"}});
    }
  });
  server.route("POST", "/invocations", with_model("/invocations", handle_invocations));
  server.route_prefix("POST", "/predictions/", with_model("/predictions", handle_invocations));
  server.route("POST", "/v1/completions", with_model("/v1/completions", handle_completions));
  server.route("POST", "/v1/chat/completions", with_model("/v1/chat/completions", handle_chat_completions));
  server.route("GET", "/v1/models", with_model("/v1/models", handle_models));
  server.route("GET", "/metrics", [&](const HttpRequest&, HttpResponse& res) {
    ServingContext* ctx = ready.load();
    const auto stats = ctx ? ctx->service.stats() : EngineStats{};
    res.send(200, "text/plain; version=0.0.4", metrics.render(stats, o.max_rolling_batch_size));
  });
  server.start();
  log_info("kiln ", kVersion, " listening on ", o.host, ":", server.port());

  const fs::path model = o.model_id.empty() ? default_model : fs::path(o.model_id);
  bool verified = false;  // the blobs were checked already (S3 engines)
  const fs::path engine_dir = resolve_engine(model, o, &verified);
  auto engine =
      engine::Engine::open(engine_dir, runtime::runtime_target_for(engine::Engine::read_manifest(engine_dir).target));
  engine.set_verify_weights(o.verify_weights && !verified);
  if (!fs::is_directory(engine_dir / "tokenizer")) {
    throw_error("engine ", engine_dir.string(),
                " carries no tokenizer; kiln serve needs tokenizer.json or tokenizer.model");
  }
  const auto tokenizer = tokenizer::Tokenizer::load(engine_dir / "tokenizer");
  const auto chat = tokenizer::ChatSettings::load(engine_dir / "tokenizer");
  const auto backend = runtime::make_backend(engine.manifest());
  EngineServiceOptions service_options;
  service_options.max_batch_size = o.max_rolling_batch_size;
  service_options.max_queue = o.max_queue_size;
  service_options.gpu_memory_utilization = o.gpu_memory_utilization;
  EngineService service(engine, *backend, service_options);
  ServingContext context{
      service, *tokenizer, chat, metrics, o.model_id.empty() ? std::string("kiln-demo") : o.model_id, o.max_new_tokens};
  ready.store(&context);
  log_info("model ", context.model_name, " (", engine.manifest().spec.family, ") ready");

  const int signal = termination.wait();
  log_info("signal ", signal, ": finishing in-flight requests");
  service.drain(std::chrono::seconds(30));
  server.stop(std::chrono::seconds(30));
  ready.store(nullptr);
  log_info("stopped");
  return 0;
}

}  // namespace kiln::serving
