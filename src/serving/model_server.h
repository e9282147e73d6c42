// `kiln serve`: resolve the model (an engine, or a checkpoint compiled just in
// time into the cache), start the HTTP server at once (GET /ping says 503
// until the model is ready), serve the LMI and OpenAI routes over the engine
// loop, and on SIGTERM stop accepting, finish in-flight requests and return.
#pragma once

#include <filesystem>

#include "serving/serving_options.h"

namespace kiln::serving {

// The engine directory for `model` (an engine or a HuggingFace checkpoint
// directory), compiling a checkpoint into options.cache_dir unless an engine
// for the same files and options is already there.
std::filesystem::path resolve_engine(const std::filesystem::path& model, const ServingOptions& options);

// Runs until SIGTERM or SIGINT; returns the process exit status.
int run_model_server(const ServingOptions& options, const std::filesystem::path& default_model);

}  // namespace kiln::serving
