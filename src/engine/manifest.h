// engine.json: everything needed to run an engine without its checkpoint.
// docs/engine-format.md describes the format; bump kFormatVersion on any
// change a reader of the previous version would misread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/model_spec.h"
#include "core/tensor.h"
#include "engine/target.h"

namespace kiln::engine {

inline constexpr int kFormatVersion = 1;
inline constexpr uint64_t kTensorAlignment = 256;  // bytes; suits SIMD loads and GPU copies

// Sizes the engine is built (and its kernels tuned) for; the runtime refuses more.
struct Limits {
  int64_t max_batch_size = 8;
  int64_t max_input_len = 1024;
  int64_t max_output_len = 1024;
  int64_t max_num_tokens = 4096;  // tokens per engine step
};

// How the engine's projections are stored (core/model_spec.h,
// tensor_names::is_projection). none: in the engine's dtype. fp8: E4M3 weights
// (core/fp8.h), each with per-output-channel fp32 scales
// (tensor_names::scale_of), on GPUs with FP8 tensor cores (sm_89 and later).
enum class Quantization { none, fp8 };
std::string_view quantization_name(Quantization q);
// "none" or "fp8" (and LMI's spellings of them); false when unknown.
bool parse_quantization(std::string_view name, Quantization* out);

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::string layout;  // how tensor parallelism split it: replicated, column, row, qkv, gate_up
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct RankBlob {
  std::string file;  // "rank0.bin"
  uint64_t size = 0;
  uint64_t checksum = 0;  // engine::checksum64 of the whole file
  // Checksum64 of each chunk_bytes piece of the file (BlobChecksum); empty in
  // engines written before they were recorded, which verify the whole file.
  uint64_t chunk_bytes = 0;
  std::vector<uint64_t> chunk_checksums;
  std::vector<TensorEntry> tensors;
};

struct Manifest {
  int format_version = kFormatVersion;
  std::string kiln_version;
  ModelSpec spec;
  Target target;
  DType dtype = DType::f32;         // weight dtype of matrices (norms and biases stay fp32)
  DType source_dtype = DType::f32;  // the checkpoint's dtype: equal to dtype means no rounding happened
  Quantization quantization = Quantization::none;
  // The KV cache's element type: dtype, or f8e4m3 (an FP8 KV cache: keys and
  // values stored unscaled in E4M3, CUDA sm_89+ with a 16-bit dtype). Engines
  // whose engine.json names none keep dtype.
  DType kv_cache_dtype = DType::f32;
  int tensor_parallel = 1;
  Limits limits;
  std::string source;   // the checkpoint it was built from
  std::string created;  // UTC, ISO 8601
  double build_seconds = 0;
  nlohmann::json kernel_choices = nlohmann::json::object();
  std::vector<RankBlob> ranks;

  uint64_t total_bytes() const;
};

nlohmann::json manifest_to_json(const Manifest& manifest);
// `where` names the file in error messages.
Manifest manifest_from_json(const nlohmann::json& json, const std::string& where);

}  // namespace kiln::engine
