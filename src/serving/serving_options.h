// The options LMI (DJL Serving "Large Model Inference") users write, read the
// way LMI reads them: `option.*` keys of <properties dir>/serving.properties,
// then `OPTION_*` environment variables, the environment winning. One set of
// options drives `kiln serve` and `kiln build --properties-dir`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "engine/manifest.h"

namespace kiln::serving {

// Environment variables as name/value pairs; passed in so tests need not touch the process environment.
using Environment = std::vector<std::pair<std::string, std::string>>;

// The environment of this process.
Environment process_environment();

// One option setting and where it was written.
struct OptionSource {
  std::string name;    // the option: "tensor_parallel_degree"
  std::string value;   // as written, blanks trimmed
  std::string origin;  // where and as what: "/dir/serving.properties:12: option.tensor_parallel_degree",
                       // or "OPTION_TENSOR_PARALLEL_DEGREE"
};

struct ServingOptions {
  // The model: a local directory (checkpoint or engine) or an s3://bucket/prefix URL.
  // Empty: the embedded demo model, which the caller resolves.
  std::string model_id;
  int tensor_parallel_degree = 1;
  // "max": as many ranks as visible devices (see tensor_parallel_for).
  bool tensor_parallel_all_devices = false;
  std::optional<DType> dtype;  // unset ("auto"): the checkpoint's dtype
  // option.quantize: fp8 builds a checkpoint's projections in E4M3 (engine/manifest.h).
  engine::Quantization quantization = engine::Quantization::none;
  // option.kv_cache_dtype: "fp8" builds an FP8 KV cache; "auto" keeps the engine's dtype.
  std::string kv_cache_dtype = "auto";
  std::string target = "auto";  // auto | cpu | cuda

  // Batching and limits.
  std::string rolling_batch = "auto";  // every value but "disable" means continuous batching
  int max_rolling_batch_size = 32;
  // Unset limits take the engine's values (at build time: the model's context length;
  // max_num_tokens 4096).
  std::optional<int64_t> max_input_len, max_output_len, max_num_tokens;
  int max_new_tokens = 256;   // for requests that do not say
  int max_queue_size = 1024;  // waiting requests beyond this are refused (429)
  double gpu_memory_utilization = 0.9;
  bool verify_weights = true;  // hash the engine's blobs while loading them (refuse a corrupted copy)

  // The server.
  std::string host = "0.0.0.0";     // LMI listens on every interface
  int port = 8080;                  // 0: any free port
  std::filesystem::path cache_dir;  // engines compiled just in time; default $HOME/.cache/kiln

  // For the caller to print: notes say what was accepted and ignored or overridden;
  // warnings name keys kiln does not know (likely typos).
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
  // The setting in effect for each option that was given, in the order read.
  std::vector<OptionSource> sources;

  bool continuous_batching() const { return rolling_batch != "disable"; }
  // The tensor-parallel degree with "max" resolved: all visible devices (1 on the CPU).
  int tensor_parallel_for(int visible_devices) const;
  // Where an option was set, or nullptr when it has its default.
  const OptionSource* source_of(std::string_view name) const;
};

// Reads <properties_dir>/serving.properties when present (a properties_dir that
// is itself a file is read as that file; an empty path reads no file), then the
// `OPTION_*` entries of `environment` (OPTION_MODEL_ID -> model_id). The last
// setting of an option wins; an empty value leaves the default. HOME in
// `environment` places the default cache_dir. Throws kiln::Error when
// properties_dir does not exist or a value is invalid, naming the origin, the
// value and what is allowed.
ServingOptions load_serving_options(const std::filesystem::path& properties_dir, const Environment& environment);

}  // namespace kiln::serving
