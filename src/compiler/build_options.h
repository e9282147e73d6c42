// What `kiln build` was asked to do.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "engine/manifest.h"
#include "engine/target.h"

namespace kiln::compiler {

struct BuildOptions {
  std::filesystem::path model;   // HuggingFace checkpoint directory
  std::filesystem::path output;  // engine directory to create
  std::optional<DType> dtype;    // default: the checkpoint's torch_dtype (fp32 when unset)
  engine::Target target;
  int tensor_parallel = 1;
  // Unset limits default to the model's context length (max_batch_size: 8, max_num_tokens: 4096).
  std::optional<int64_t> max_batch_size, max_input_len, max_output_len, max_num_tokens;
  bool force = false;
  std::vector<std::string> hf_overrides;  // key=value patches of config.json
};

// Parses "fp32", "fp16", "bf16" (and their long names) as a build dtype.
DType parse_build_dtype(const std::string& name);

}  // namespace kiln::compiler
