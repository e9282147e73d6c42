#include "engine/engine_reader.h"

#include <fstream>

#include "core/error.h"
#include "core/version.h"
#include "engine/blob_verifier.h"
#include "engine/manifest_check.h"

namespace kiln::engine {
namespace fs = std::filesystem;

Manifest Engine::read_manifest(const fs::path& dir) {
  const fs::path file = dir / "engine.json";
  if (!fs::is_directory(dir)) throw_error("engine ", dir.string(), " does not exist");
  if (!fs::exists(file)) throw_error(dir.string(), " is not a kiln engine (no engine.json)");
  std::ifstream in(file);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_error(file.string(), " is not valid JSON: ", e.what());
  }
  Manifest m = manifest_from_json(j, file.string());
  if (m.format_version != kFormatVersion) {
    throw_error("engine ", dir.string(), " has format version ", m.format_version, ", but kiln ", kVersion,
                " reads format version ", kFormatVersion, ": rebuild the engine with this kiln");
  }
  return m;
}

Engine Engine::open(const fs::path& dir, const std::optional<Target>& expected, OpenCheck check) {
  Engine e;
  e.dir_ = dir;
  e.manifest_ = read_manifest(dir);
  const std::string where = (dir / "engine.json").string();
  validate_container(e.manifest_, where);
  if (check == OpenCheck::model) validate_model(e.manifest_, where);
  if (expected && !(e.manifest_.target == *expected)) {
    throw_error("engine ", dir.string(), " was built for ", e.manifest_.target.describe(), ", but this machine runs ",
                expected->describe(), ": rebuild it with `kiln build --target ", expected->backend, "`");
  }
  // Every rank's blob is there before any is mapped: a missing one is named
  // with how many the engine has and how many were found.
  std::vector<std::string> missing;
  for (const auto& rank : e.manifest_.ranks) {
    std::error_code ec;
    if (!fs::exists(dir / rank.file, ec)) missing.push_back(rank.file);
  }
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    const std::size_t ranks = e.manifest_.ranks.size();
    throw_error("engine ", dir.string(), " has ", ranks, " tensor-parallel rank", ranks == 1 ? "" : "s",
                " in engine.json but only ", ranks - missing.size(), " blob", ranks - missing.size() == 1 ? "" : "s",
                " beside it: ", names, " missing (an incomplete copy?)");
  }
  for (const auto& rank : e.manifest_.ranks) {
    const fs::path blob_path = dir / rank.file;
    auto blob = MappedFile::open(blob_path);
    if (blob->size() != rank.size) {
      throw_error("engine blob ", blob_path.string(), " has ", blob->size(), " bytes, engine.json says ", rank.size,
                  " (truncated or incomplete copy?)");
    }
    // validate_container has checked every entry against rank.size.
    std::unordered_map<std::string, const TensorEntry*> index;
    for (const auto& t : rank.tensors) index.emplace(t.name, &t);
    e.blobs_.push_back(std::move(blob));
    e.index_.push_back(std::move(index));
  }
  return e;
}

bool Engine::has_tensor(int rank, std::string_view name) const {
  return index_.at(static_cast<std::size_t>(rank)).count(std::string(name)) > 0;
}

TensorView Engine::tensor(int rank, std::string_view name) const {
  const auto& index = index_.at(static_cast<std::size_t>(rank));
  auto it = index.find(std::string(name));
  if (it == index.end()) throw_error("engine ", dir_.string(), " has no tensor '", name, "' in rank ", rank);
  const auto& blob = blobs_[static_cast<std::size_t>(rank)];
  TensorView v;
  v.dtype = it->second->dtype;
  v.shape = it->second->shape;
  v.data = blob->data() + it->second->offset;
  v.keep_alive = blob;
  return v;
}

void Engine::verify_checksums() const { BlobVerifier(*this).finish(); }

}  // namespace kiln::engine
