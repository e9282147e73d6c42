// One .safetensors file, memory-mapped: an 8-byte little-endian header length,
// a JSON header describing each tensor, then the tensor bytes. The header is
// validated completely on open, so get() can hand out views without checks.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace kiln::checkpoint {

class SafetensorsFile {
 public:
  // Throws kiln::Error naming the file (and the tensor) on any malformed header.
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  // A zero-copy view into the map; the view keeps the map alive.
  TensorView get(std::string_view name) const;
  const std::filesystem::path& path() const { return map_->path(); }
  // The header's "__metadata__" object (string to string), or an empty object.
  const nlohmann::json& metadata() const { return metadata_; }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    std::size_t begin;  // offset into the data section
  };

  explicit SafetensorsFile(std::shared_ptr<const MappedFile> map) : map_(std::move(map)) {}

  std::shared_ptr<const MappedFile> map_;
  const std::byte* data_section_ = nullptr;
  std::map<std::string, Entry, std::less<>> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace kiln::checkpoint
