// A PyTorch checkpoint (pytorch_model.bin) as torch.save writes it since 1.6: a
// ZIP archive holding <prefix>/data.pkl (the state dict, pickled) and one entry
// <prefix>/data/<key> per storage. Tensors are read without running any pickle
// code, and those that are contiguous in their storage are views into the map.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/pickle_reader.h"
#include "checkpoint/zip_archive.h"
#include "core/tensor.h"

namespace kiln::checkpoint {

class TorchBinFile {
 public:
  // Throws kiln::Error naming the file (and the tensor) when it is not a zip
  // checkpoint, holds something other than a flat dict of tensors, or a tensor
  // reaches past its storage.
  static std::shared_ptr<const TorchBinFile> open(const std::filesystem::path& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  // A view into the map when the tensor is contiguous in its storage; otherwise
  // a contiguous copy the view owns.
  TensorView get(std::string_view name) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Entry {
    TorchTensorRef tensor;
    ZipEntryData storage;
  };

  explicit TorchBinFile(std::filesystem::path path) : path_(std::move(path)) {}

  std::filesystem::path path_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace kiln::checkpoint
