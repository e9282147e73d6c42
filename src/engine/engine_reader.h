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

// What Engine::open validates of engine.json before it maps anything
// (engine/manifest_check.h): the container always; the model (spec, limits,
// tensor table against the spec) unless the caller only handles the container
// and will never run it (format tests with tensors of no model).
enum class OpenCheck { model, container };

class Engine {
 public:
  // `expected`: the target this process runs; nullopt skips the target check (inspect).
  static Engine open(const std::filesystem::path& dir, const std::optional<Target>& expected,
                     OpenCheck check = OpenCheck::model);
  // engine.json alone, after the format-version check and nothing else: for
  // describing an engine (inspect) and reading its target before open().
  static Manifest read_manifest(const std::filesystem::path& dir);

  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool has_tensor(int rank, std::string_view name) const;
  // Throws kiln::Error naming the engine and tensor when absent.
  TensorView tensor(int rank, std::string_view name) const;
  // The mapped file of rank `rank`.
  const MappedFile& blob(std::size_t rank) const { return *blobs_.at(rank); }
  // Recomputes each blob's checksums against engine.json (BlobVerifier), all at once.
  void verify_checksums() const;
  // Whether loading the weights verifies the blobs as it reads them (on unless
  // the user asks for the last few percent of load time: --no-verify-weights).
  bool verify_weights() const { return verify_weights_; }
  void set_verify_weights(bool verify) { verify_weights_ = verify; }

 private:
  std::filesystem::path dir_;
  Manifest manifest_;
  std::vector<std::shared_ptr<const MappedFile>> blobs_;
  std::vector<std::unordered_map<std::string, const TensorEntry*>> index_;
  bool verify_weights_ = true;
};

}  // namespace kiln::engine
