// Opens an engine directory: reads engine.json, refuses another format version
// or target with a message naming both, and maps each rank's blob so tensors
// are views into the page cache (no copy on the CPU target).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"
#include "engine/manifest.h"

namespace kiln::engine {

class Engine {
 public:
  // `expected`: the target this process runs; nullopt skips the target check (inspect).
  static Engine open(const std::filesystem::path& dir, const std::optional<Target>& expected);
  // engine.json alone, after the format-version check.
  static Manifest read_manifest(const std::filesystem::path& dir);

  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool has_tensor(int rank, std::string_view name) const;
  // Throws kiln::Error naming the engine and tensor when absent.
  TensorView tensor(int rank, std::string_view name) const;
  // Recomputes each blob's checksum against engine.json.
  void verify_checksums() const;

 private:
  std::filesystem::path dir_;
  Manifest manifest_;
  std::vector<std::shared_ptr<const MappedFile>> blobs_;
  std::vector<std::unordered_map<std::string, const TensorEntry*>> index_;
};

}  // namespace kiln::engine
