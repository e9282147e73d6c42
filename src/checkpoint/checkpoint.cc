#include "checkpoint/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_index(const fs::path& index) {
  std::ifstream in(index);
  if (!in) throw_error("cannot read checkpoint index ", index.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw_error("checkpoint index ", index.string(), " is not valid JSON: ", e.what());
  }
}

// The index's weight_map (tensor -> shard file), grouped by shard.
std::map<std::string, std::vector<std::string>> tensors_by_shard(const fs::path& index_path) {
  const json index = read_index(index_path);
  const auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
  if (weight_map == index.end() || !weight_map->is_object() || weight_map->empty()) {
    throw_error("checkpoint index ", index_path.string(), " has no weight_map object listing tensors");
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      throw_error("checkpoint index ", index_path.string(), ": shard of tensor '", tensor, "' is not a file name");
    }
    out[shard.get<std::string>()].push_back(tensor);
  }
  return out;
}

std::vector<fs::path> safetensors_files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The names sharing the longest prefix with `wanted`: usually the tensor the
// caller meant, or its siblings in the same layer.
std::string closest_names(const std::map<std::string, std::size_t, std::less<>>& names, std::string_view wanted) {
  std::vector<std::pair<std::size_t, std::string_view>> scored;  // (common prefix length, name)
  for (const auto& [name, file] : names) {
    const auto mismatch = std::mismatch(name.begin(), name.end(), wanted.begin(), wanted.end());
    scored.emplace_back(static_cast<std::size_t>(mismatch.first - name.begin()), name);
  }
  const std::size_t shown = std::min<std::size_t>(3, scored.size());
  std::partial_sort(
      scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(shown), scored.end(),
      [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) out += concat(i ? ", '" : "closest: '", scored[i].second, "'");
  return out;
}

}  // namespace

WeightSet WeightSet::open(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw_error("checkpoint directory ", dir.string(), " does not exist or is not a directory");
  if (fs::is_regular_file(dir / "model.safetensors.index.json")) {
    return open_index<SafetensorsFile>(dir, "safetensors", dir / "model.safetensors.index.json");
  }
  if (fs::is_regular_file(dir / "model.safetensors")) {
    return open_files<SafetensorsFile>(dir, "safetensors", {dir / "model.safetensors"});
  }
  if (fs::is_regular_file(dir / "pytorch_model.bin.index.json")) {
    return open_index<TorchBinFile>(dir, "pytorch-bin", dir / "pytorch_model.bin.index.json");
  }
  if (fs::is_regular_file(dir / "pytorch_model.bin")) {
    return open_files<TorchBinFile>(dir, "pytorch-bin", {dir / "pytorch_model.bin"});
  }
  // Safetensors under other names come last: the standard names above say which
  // files are weights, while a stray *.safetensors beside them may be anything.
  if (auto files = safetensors_files_in(dir); !files.empty()) {
    return open_files<SafetensorsFile>(dir, "safetensors", files);
  }
  throw_error("no weights found in checkpoint directory ", dir.string(),
              ": looked for model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, "
              "pytorch_model.bin and *.safetensors");
}

template <typename FileType>
WeightSet WeightSet::open_files(const fs::path& dir, std::string_view format, const std::vector<fs::path>& paths) {
  WeightSet set;
  set.dir_ = dir;
  set.format_ = format;
  for (const fs::path& path : paths) set.add(FileType::open(path));
  return set;
}

// Each shard is opened once, and every tensor the index lists must be in the
// shard it names.
template <typename FileType>
WeightSet WeightSet::open_index(const fs::path& dir, std::string_view format, const fs::path& index_path) {
  WeightSet set;
  set.dir_ = dir;
  set.format_ = format;
  for (const auto& [shard, tensors] : tensors_by_shard(index_path)) {
    const fs::path shard_path = dir / shard;
    if (!fs::is_regular_file(shard_path)) {
      throw_error("checkpoint index ", index_path.string(), " maps tensor '", tensors.front(), "' to shard ", shard,
                  ", which is missing (", shard_path.string(), ")");
    }
    auto file = FileType::open(shard_path);
    for (const std::string& tensor : tensors) {
      if (!file->contains(tensor)) {
        throw_error("checkpoint index ", index_path.string(), " maps tensor '", tensor, "' to shard ", shard,
                    ", which does not contain it");
      }
    }
    set.add(std::move(file));
  }
  return set;
}

template <typename FileType>
void WeightSet::add(std::shared_ptr<const FileType> file) {
  for (std::string& name : file->names()) {
    const auto [it, inserted] = file_index_.emplace(std::move(name), files_.size());
    if (!inserted) {
      throw_error("tensor '", it->first, "' appears in two files of checkpoint ", dir_.string(), ": ",
                  file_of(it->first).string(), " and ", file->path().string());
    }
  }
  files_.emplace_back(std::move(file));
}

std::vector<std::string> WeightSet::names() const {
  std::vector<std::string> out;
  out.reserve(file_index_.size());
  for (const auto& [name, file] : file_index_) out.push_back(name);
  return out;
}

bool WeightSet::contains(std::string_view name) const { return file_index_.find(name) != file_index_.end(); }

const WeightSet::File& WeightSet::file_holding(std::string_view name) const {
  const auto it = file_index_.find(name);
  if (it == file_index_.end()) {
    throw_error("tensor '", name, "' not found in checkpoint ", dir_.string(), " (", file_index_.size(), " tensors",
                file_index_.empty() ? "" : "; ", closest_names(file_index_, name), ")");
  }
  return files_[it->second];
}

TensorView WeightSet::get(std::string_view name) const {
  return std::visit([&](const auto& file) { return file->get(name); }, file_holding(name));
}

fs::path WeightSet::file_of(std::string_view name) const {
  return std::visit([](const auto& file) { return file->path(); }, file_holding(name));
}

}  // namespace kiln::checkpoint
