#include "engine/manifest_check.h"

#include <limits>
#include <map>
#include <set>
#include <string>

#include "core/error.h"
#include "core/model_spec_check.h"

namespace kiln::engine {
namespace {

namespace tn = tensor_names;

// A tensor the spec implies in every rank's table (replicated tensors are
// copied into each rank, split ones hold that rank's share).
struct ExpectedTensor {
  Shape shape;
  DType dtype;
  bool required;
};

using ExpectedTable = std::map<std::string, ExpectedTensor>;

// The table every rank of a `tp`-way engine must have. Matrices are stored in
// the engine's dtype, projections of an fp8 engine in E4M3 with fp32 scales;
// vectors and routers in fp32 (compiler/compiler.cc).
ExpectedTable expected_tensors(const ModelSpec& s, DType dtype, Quantization quantization, int tp) {
  const int64_t H = s.hidden_size, V = s.vocab_size, I = s.intermediate_size / tp;
  const int64_t q = s.q_size() / tp, qkv = q + 2 * s.kv_heads_per_rank(tp) * s.head_dim;
  ExpectedTable t;
  auto matrix = [&](std::string name, int64_t rows, int64_t cols, bool required = true) {
    if (quantization == Quantization::fp8 && tn::is_projection(name)) {
      t[tn::scale_of(name)] = {{rows}, DType::f32, required};
      t[std::move(name)] = {{rows, cols}, DType::f8e4m3, required};
      return;
    }
    t[std::move(name)] = {{rows, cols}, dtype, required};
  };
  auto vector = [&](std::string name, int64_t size, bool required) {
    t[std::move(name)] = {{size}, DType::f32, required};
  };
  matrix(tn::kEmbed, V, H);
  if (s.positions == PositionKind::learned) matrix(tn::kPosEmbed, s.max_positions, H);
  vector(tn::kFinalNormWeight, H, true);
  vector(tn::kFinalNormBias, H, false);
  if (!s.tied_embeddings) matrix(tn::kLmHead, V, H);
  vector(tn::kLmHeadBias, V, false);
  const bool mlp_norm = !s.parallel_block || s.parallel_two_norms;
  for (int64_t i = 0; i < s.num_layers; ++i) {
    auto at = [i](const char* suffix) { return tn::layer(i, suffix); };
    vector(at(tn::kAttnNormWeight), H, true);
    vector(at(tn::kAttnNormBias), H, false);
    if (mlp_norm) {
      vector(at(tn::kMlpNormWeight), H, true);
      vector(at(tn::kMlpNormBias), H, false);
    }
    matrix(at(tn::kQkvWeight), qkv, H);
    vector(at(tn::kQkvBias), qkv, false);
    matrix(at(tn::kOutWeight), H, q);
    vector(at(tn::kOutBias), H, false);
    if (s.num_experts > 0) {
      t[at(tn::kRouterWeight)] = {{s.num_experts, H}, DType::f32, true};
      for (int64_t e = 0; e < s.num_experts; ++e) {
        matrix(tn::expert(i, e, tn::kExpertGateUpWeight), 2 * I, H);
        matrix(tn::expert(i, e, tn::kExpertDownWeight), H, I);
      }
    } else {
      if (s.gated_mlp) {
        matrix(at(tn::kGateUpWeight), 2 * I, H);
      } else {
        matrix(at(tn::kUpWeight), I, H);
        vector(at(tn::kUpBias), I, false);
      }
      matrix(at(tn::kDownWeight), H, I);
      vector(at(tn::kDownBias), H, false);
    }
  }
  return t;
}

void check_limits(const Manifest& m, std::string_view where) {
  auto in_range = [&](const char* field, int64_t value, int64_t high) {
    if (value < 1 || value > high)
      throw_error(where, ": limits.", field, " (", value, ") must be between 1 and ", high);
  };
  using B = ManifestBounds;
  in_range("max_batch_size", m.limits.max_batch_size, B::kMaxBatchSize);
  in_range("max_input_len", m.limits.max_input_len, B::kMaxSequenceLen);
  in_range("max_output_len", m.limits.max_output_len, B::kMaxSequenceLen);
  in_range("max_num_tokens", m.limits.max_num_tokens, B::kMaxSequenceLen);
  if (m.spec.max_positions > 0 && m.limits.max_input_len > m.spec.max_positions) {
    throw_error(where, ": limits.max_input_len (", m.limits.max_input_len, ") exceeds model.max_positions (",
                m.spec.max_positions, ")");
  }
}

// The conditions compiler::check_splittable builds under, checked again
// (after validate_container has bounded tensor_parallel).
void check_tensor_parallel(const Manifest& m, std::string_view where) {
  const ModelSpec& s = m.spec;
  const int tp = m.tensor_parallel;
  if (tp < 1) throw_error(where, ": tensor_parallel (", tp, ") must be at least 1");
  const bool kv_split = s.num_kv_heads >= tp ? s.num_kv_heads % tp == 0 : tp % s.num_kv_heads == 0;
  if (s.num_heads % tp != 0 || !kv_split || s.intermediate_size % tp != 0) {
    throw_error(where, ": tensor_parallel (", tp, ") does not divide model.num_heads (", s.num_heads,
                "), model.num_kv_heads (", s.num_kv_heads, ") or model.intermediate_size (", s.intermediate_size, ")");
  }
}

// Elements of `shape`, or -1 when a dimension is negative or the product
// passes what any blob could hold.
int64_t checked_numel(const Shape& shape) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 16;
  int64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMax / d)) return -1;
    n *= d;
  }
  return n;
}

void check_rank_container(const RankBlob& blob, std::size_t r, std::string_view where) {
  const std::string file = concat("rank", r, ".bin");
  // The name is joined to the engine directory: nothing else may be opened.
  if (blob.file != file) throw_error(where, ": ranks[", r, "].file is '", blob.file, "', expected '", file, "'");
  if (!blob.chunk_checksums.empty()) {
    // Loaders hash chunk by chunk: the table must cover the file exactly.
    if (blob.chunk_bytes < (uint64_t{1} << 20) || blob.chunk_bytes > (uint64_t{1} << 32)) {
      throw_error(where, ": ranks[", r, "].chunk_bytes (", blob.chunk_bytes, ") must be between 1 MiB and 4 GiB");
    }
    const uint64_t chunks = blob.size / blob.chunk_bytes + (blob.size % blob.chunk_bytes != 0);
    if (blob.chunk_checksums.size() != chunks) {
      throw_error(where, ": ranks[", r, "].chunk_checksums lists ", blob.chunk_checksums.size(), " chunks, but ",
                  blob.size, " bytes in chunks of ", blob.chunk_bytes, " make ", chunks);
    }
  }
  std::set<std::string_view> seen;
  for (const TensorEntry& t : blob.tensors) {
    const std::string at = concat(where, ": tensor '", t.name, "' of ", file);
    if (!seen.insert(t.name).second) throw_error(at, " is listed twice");
    const int64_t numel = checked_numel(t.shape);
    if (numel < 0 || t.nbytes != static_cast<uint64_t>(numel) * dtype_size(t.dtype)) {
      throw_error(at, " has nbytes ", t.nbytes, ", but its shape and dtype take ",
                  numel < 0 ? "more than any blob holds" : std::to_string(numel * int64_t(dtype_size(t.dtype))));
    }
    // Written so that no sum can wrap: offset + nbytes <= size.
    if (t.nbytes > blob.size || t.offset > blob.size - t.nbytes) {
      throw_error(at, " lies outside the blob (offset ", t.offset, ", ", t.nbytes, " bytes, blob ", blob.size,
                  " bytes)");
    }
    if (t.offset % kTensorAlignment != 0) {
      throw_error(at, " has offset ", t.offset, ", not a multiple of ", kTensorAlignment);
    }
  }
}

void check_rank_model(const RankBlob& blob, std::size_t r, const ExpectedTable& expected, std::string_view where) {
  const std::string file = concat("rank", r, ".bin");
  std::set<std::string_view> seen;
  for (const TensorEntry& t : blob.tensors) {
    const std::string at = concat(where, ": tensor '", t.name, "' of ", file);
    seen.insert(t.name);
    const auto found = expected.find(t.name);
    if (found == expected.end()) throw_error(at, " is not a tensor of this model");
    const ExpectedTensor& e = found->second;
    if (t.shape != e.shape) {
      throw_error(at, " has shape ", shape_str(t.shape), ", but the model implies ", shape_str(e.shape));
    }
    if (t.dtype != e.dtype) {
      throw_error(at, " is ", dtype_name(t.dtype), ", but the engine stores it as ", dtype_name(e.dtype));
    }
  }
  for (const auto& [name, e] : expected) {
    if (e.required && !seen.count(name)) throw_error(where, ": ", file, " has no tensor '", name, "'");
  }
}

}  // namespace

void validate_container(const Manifest& m, std::string_view where) {
  const int tp = m.tensor_parallel;
  if (tp < 1 || tp > ManifestBounds::kMaxTensorParallel) {
    throw_error(where, ": tensor_parallel (", tp, ") must be between 1 and ", ManifestBounds::kMaxTensorParallel);
  }
  if (m.ranks.size() != static_cast<std::size_t>(tp)) {
    throw_error(where, ": ranks lists ", m.ranks.size(), " blobs, but tensor_parallel is ", tp);
  }
  for (std::size_t r = 0; r < m.ranks.size(); ++r) check_rank_container(m.ranks[r], r, where);
}

void validate_model(const Manifest& m, std::string_view where) {
  check_model_spec(m.spec, where, [](std::string_view field) { return concat("model.", field); });
  if (!(m.dtype == DType::f32 || m.dtype == DType::f16 || m.dtype == DType::bf16)) {
    throw_error(where, ": dtype ", dtype_name(m.dtype), " is not a weight dtype kiln runs (fp32, fp16, bf16)");
  }
  check_limits(m, where);
  check_tensor_parallel(m, where);
  if (m.quantization == Quantization::fp8 && (m.target.backend != "cuda" || m.dtype == DType::f32)) {
    throw_error(where, ": quantization fp8 is for the CUDA target with a 16-bit dtype, not ", m.target.describe(),
                " in ", dtype_name(m.dtype));
  }
  if (m.kv_cache_dtype != m.dtype) {
    const int arch = m.target.arch.starts_with("sm_") ? std::atoi(m.target.arch.c_str() + 3) : 0;
    if (m.kv_cache_dtype != DType::f8e4m3) {
      throw_error(where, ": kv_cache_dtype ", dtype_name(m.kv_cache_dtype), " is neither the engine's dtype (",
                  dtype_name(m.dtype), ") nor fp8_e4m3");
    }
    if (m.target.backend != "cuda" || arch < 89 || m.dtype == DType::f32) {
      throw_error(where, ": kv_cache_dtype fp8_e4m3 is for the CUDA target from sm_89 with a 16-bit dtype, not ",
                  m.target.describe(), " in ", dtype_name(m.dtype));
    }
  }
  const ExpectedTable expected = expected_tensors(m.spec, m.dtype, m.quantization, m.tensor_parallel);
  for (std::size_t r = 0; r < m.ranks.size(); ++r) check_rank_model(m.ranks[r], r, expected, where);
}

void validate_manifest(const Manifest& m, std::string_view where) {
  validate_container(m, where);
  validate_model(m, where);
}

}  // namespace kiln::engine
