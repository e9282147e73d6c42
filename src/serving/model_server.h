// `kiln serve`: resolve the model (an engine, or a checkpoint compiled just in
// time into the cache), start the HTTP server at once (GET /ping says 503
// until the model is ready), serve the LMI and OpenAI routes over the engine
// loop, and on SIGTERM stop accepting, finish in-flight requests and return.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "serving/http_response.h"
#include "serving/metrics.h"
#include "serving/serving_options.h"

namespace kiln::serving {

// The engine directory for `model` (an engine or a HuggingFace checkpoint
// directory), compiling a checkpoint into options.cache_dir unless an engine
// for the same files and options is already there. An s3:// model is
// downloaded through the cache first; when it is an engine, its blobs are
// verified (a damaged cached copy is downloaded again) and *blobs_verified set.
std::filesystem::path resolve_engine(const std::filesystem::path& model, const ServingOptions& options,
                                     bool* blobs_verified);

// Runs a route's `body` and answers its failures as JSON {"error", "code"}:
// ApiError with its status (503 and 429 with Retry-After), kiln::Error 400,
// anything else 500. Once a response has started it adds nothing, but to a
// stream still open (the routes end their own streams in their formats): a
// last JSON line. Records the status in `metrics`.
void answer_route(Metrics& metrics, const std::string& route, HttpResponse& response,
                  const std::function<void()>& body);

// Runs until SIGTERM or SIGINT; returns the process exit status.
int run_model_server(const ServingOptions& options, const std::filesystem::path& default_model);

}  // namespace kiln::serving
