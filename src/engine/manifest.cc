#include "engine/manifest.h"

#include "core/error.h"
#include "engine/spec_json.h"

namespace kiln::engine {

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
    ranks.push_back({{"file", r.file}, {"size", r.size}, {"checksum", r.checksum}, {"tensors", tensors}});
  }
  return {
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
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version != kFormatVersion) return m;  // the reader reports the mismatch
    m.kiln_version = j.at("kiln_version").get<std::string>();
    m.target.backend = j.at("target").at("backend").get<std::string>();
    m.target.arch = j.at("target").at("arch").get<std::string>();
    m.dtype = dtype_field(j.at("dtype"), where);
    m.source_dtype = j.contains("source_dtype") ? dtype_field(j.at("source_dtype"), where) : m.dtype;
    m.tensor_parallel = j.at("tensor_parallel").get<int>();
    const auto& l = j.at("limits");
    m.limits.max_batch_size = l.at("max_batch_size").get<int64_t>();
    m.limits.max_input_len = l.at("max_input_len").get<int64_t>();
    m.limits.max_output_len = l.at("max_output_len").get<int64_t>();
    m.limits.max_num_tokens = l.at("max_num_tokens").get<int64_t>();
    m.source = j.value("source", "");
    m.created = j.value("created", "");
    m.build_seconds = j.value("build_seconds", 0.0);
    m.spec = spec_from_json(j.at("model"));
    m.kernel_choices = j.value("kernel_choices", nlohmann::json::object());
    for (const auto& r : j.at("ranks")) {
      RankBlob blob;
      blob.file = r.at("file").get<std::string>();
      blob.size = r.at("size").get<uint64_t>();
      blob.checksum = r.at("checksum").get<uint64_t>();
      for (const auto& t : r.at("tensors")) {
        TensorEntry e;
        e.name = t.at("name").get<std::string>();
        e.dtype = dtype_field(t.at("dtype"), where);
        e.shape = t.at("shape").get<Shape>();
        e.layout = t.at("layout").get<std::string>();
        e.offset = t.at("offset").get<uint64_t>();
        e.nbytes = t.at("nbytes").get<uint64_t>();
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
