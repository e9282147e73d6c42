// What `kiln build` was asked to do.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/manifest.h"
#include "engine/target.h"

namespace kiln::compiler {

// Measures kernel choices for an engine on the build machine: the cli and the
// server pass the runtime's tuner (runtime::tune_kernel_choices), which the
// compiler may not depend on. Called with the manifest as it will be written
// (but for its rank tables), on a thread of its own while the tensors are
// written; what it returns becomes the manifest's kernel_choices. A stop is
// requested when the build fails meanwhile.
using KernelTuner = std::function<nlohmann::json(const engine::Manifest& manifest, std::stop_token stop)>;

struct BuildOptions {
  std::filesystem::path model;   // HuggingFace checkpoint directory
  std::filesystem::path output;  // engine directory to create
  std::optional<DType> dtype;    // default: the checkpoint's torch_dtype (fp32 when unset; bf16 for fp8)
  // fp8: the projections in E4M3 with per-output-channel scales (engine/manifest.h).
  engine::Quantization quantization = engine::Quantization::none;
  // f8e4m3: an FP8 KV cache (engine/manifest.h); unset (auto): the engine's dtype.
  std::optional<DType> kv_cache_dtype;
  engine::Target target;
  int tensor_parallel = 1;
  // Unset limits default to the model's context length (max_batch_size: 8, max_num_tokens: 4096).
  std::optional<int64_t> max_batch_size, max_input_len, max_output_len, max_num_tokens;
  bool force = false;
  std::vector<std::string> hf_overrides;  // key=value patches of config.json
  KernelTuner kernel_tuner;               // unset: kernel_choices stays empty
};

// Parses "fp32", "fp16", "bf16" (and their long names) as a build dtype.
DType parse_build_dtype(const std::string& name);
// --kv-cache-dtype / option.kv_cache_dtype: "auto" (the engine's dtype,
// nullopt) or "fp8" (also fp8_e4m3, float8_e4m3fn); throws naming the value otherwise.
std::optional<DType> parse_kv_cache_dtype(const std::string& name);

}  // namespace kiln::compiler
