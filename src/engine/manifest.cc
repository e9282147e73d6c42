#include "engine/manifest.h"

#include "core/error.h"
#include "engine/json_fields.h"
#include "engine/spec_json.h"

namespace kiln::engine {

std::string_view quantization_name(Quantization q) { return q == Quantization::fp8 ? "fp8" : "none"; }

bool parse_quantization(std::string_view name, Quantization* out) {
  if (name == "none" || name.empty()) {
    *out = Quantization::none;
  } else if (name == "fp8") {
    *out = Quantization::fp8;
  } else {
    return false;
  }
  return true;
}

uint64_t Manifest::total_bytes() const {
  uint64_t n = 0;
  for (const auto& r : ranks) n += r.size;
  return n;
}

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& r : m.ranks) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : r.tensors) {
      tensors.push_back({{"name", t.name},
                         {"dtype", dtype_name(t.dtype)},
                         {"shape", t.shape},
                         {"layout", t.layout},
                         {"offset", t.offset},
                         {"nbytes", t.nbytes}});
    }
    nlohmann::json rank = {{"file", r.file}, {"size", r.size}, {"checksum", r.checksum}};
    if (!r.chunk_checksums.empty()) {
      rank["chunk_bytes"] = r.chunk_bytes;
      rank["chunk_checksums"] = r.chunk_checksums;
    }
    rank["tensors"] = tensors;
    ranks.push_back(std::move(rank));
  }
  nlohmann::json j = {
      {"format_version", m.format_version},
      {"kiln_version", m.kiln_version},
      {"target", {{"backend", m.target.backend}, {"arch", m.target.arch}}},
      {"dtype", dtype_name(m.dtype)},
      {"source_dtype", dtype_name(m.source_dtype)},
      {"tensor_parallel", m.tensor_parallel},
      {"limits",
       {{"max_batch_size", m.limits.max_batch_size},
        {"max_input_len", m.limits.max_input_len},
        {"max_output_len", m.limits.max_output_len},
        {"max_num_tokens", m.limits.max_num_tokens}}},
      {"source", m.source},
      {"created", m.created},
      {"build_seconds", m.build_seconds},
      {"model", spec_to_json(m.spec)},
      {"kernel_choices", m.kernel_choices},
      {"ranks", ranks},
  };
  // Written only when there is one: engines without it are unquantized.
  if (m.quantization != Quantization::none) j["quantization"] = quantization_name(m.quantization);
  if (m.kv_cache_dtype != m.dtype) j["kv_cache_dtype"] = dtype_name(m.kv_cache_dtype);
  return j;
}

static DType dtype_field(const nlohmann::json& j, const std::string& where) {
  DType t;
  const std::string name = j.get<std::string>();
  if (!parse_dtype(name, &t)) throw_error(where, ": unknown dtype '", name, "'");
  return t;
}

Manifest manifest_from_json(const nlohmann::json& j, const std::string& where) {
  Manifest m;
  try {
    m.format_version = json_integer<int>(j, "format_version", "");
    if (m.format_version != kFormatVersion) return m;  // the reader reports the mismatch
    m.kiln_version = j.at("kiln_version").get<std::string>();
    m.target.backend = j.at("target").at("backend").get<std::string>();
    m.target.arch = j.at("target").at("arch").get<std::string>();
    m.dtype = dtype_field(j.at("dtype"), where);
    m.source_dtype = j.contains("source_dtype") ? dtype_field(j.at("source_dtype"), where) : m.dtype;
    m.tensor_parallel = json_integer<int>(j, "tensor_parallel", "");
    m.kv_cache_dtype = j.contains("kv_cache_dtype") ? dtype_field(j.at("kv_cache_dtype"), where) : m.dtype;
    if (j.contains("quantization")) {
      const std::string q = j.at("quantization").get<std::string>();
      if (!parse_quantization(q, &m.quantization)) {
        throw_error(where, ": quantization '", q, "' is not one kiln knows (none, fp8)");
      }
    }
    const auto& l = j.at("limits");
    m.limits.max_batch_size = json_integer<int64_t>(l, "max_batch_size", "limits.");
    m.limits.max_input_len = json_integer<int64_t>(l, "max_input_len", "limits.");
    m.limits.max_output_len = json_integer<int64_t>(l, "max_output_len", "limits.");
    m.limits.max_num_tokens = json_integer<int64_t>(l, "max_num_tokens", "limits.");
    m.source = j.value("source", "");
    m.created = j.value("created", "");
    m.build_seconds = j.value("build_seconds", 0.0);
    m.spec = spec_from_json(j.at("model"));
    m.kernel_choices = j.value("kernel_choices", nlohmann::json::object());
    for (const auto& r : j.at("ranks")) {
      RankBlob blob;
      blob.file = r.at("file").get<std::string>();
      blob.size = json_integer<uint64_t>(r, "size", "ranks[].");
      blob.checksum = json_integer<uint64_t>(r, "checksum", "ranks[].");
      if (r.contains("chunk_checksums")) {
        blob.chunk_bytes = json_integer<uint64_t>(r, "chunk_bytes", "ranks[].");
        blob.chunk_checksums = json_integers<uint64_t>(r.at("chunk_checksums"), "ranks[].chunk_checksums");
      }
      for (const auto& t : r.at("tensors")) {
        TensorEntry e;
        e.name = t.at("name").get<std::string>();
        e.dtype = dtype_field(t.at("dtype"), where);
        e.shape = json_integers<int64_t>(t.at("shape"), "ranks[].tensors[].shape");
        e.layout = t.at("layout").get<std::string>();
        e.offset = json_integer<uint64_t>(t, "offset", "ranks[].tensors[].");
        e.nbytes = json_integer<uint64_t>(t, "nbytes", "ranks[].tensors[].");
        blob.tensors.push_back(std::move(e));
      }
      m.ranks.push_back(std::move(blob));
    }
  } catch (const nlohmann::json::exception& e) {
    throw_error(where, " is incomplete or malformed: ", e.what());
  }
  return m;
}

}  // namespace kiln::engine
