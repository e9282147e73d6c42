// All weights of one HuggingFace checkpoint directory, whichever way they are
// stored: one or many safetensors files (with or without an index), or
// PyTorch .bin files (one, or shards with an index). Every file is opened and
// its header checked up front, so that a broken checkpoint fails at open with
// a message naming the file, not halfway through a build.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "checkpoint/safetensors_file.h"
#include "checkpoint/torch_bin_file.h"
#include "core/tensor.h"

namespace kiln::checkpoint {

class WeightSet {
 public:
  // Looks, in this order, for model.safetensors.index.json, model.safetensors,
  // pytorch_model.bin.index.json, pytorch_model.bin, and then any *.safetensors.
  // Throws kiln::Error naming the directory (and the index, shard or tensor).
  static WeightSet open(const std::filesystem::path& dir);

  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  // Throws kiln::Error: "tensor 'X' not found in checkpoint DIR (N tensors; ...)".
  TensorView get(std::string_view name) const;
  // The file that holds the tensor, for messages.
  std::filesystem::path file_of(std::string_view name) const;
  std::string_view format() const { return format_; }  // "safetensors" or "pytorch-bin"
  const std::filesystem::path& dir() const { return dir_; }

 private:
  using File = std::variant<std::shared_ptr<const SafetensorsFile>, std::shared_ptr<const TorchBinFile>>;

  template <typename FileType>
  static WeightSet open_files(const std::filesystem::path& dir, std::string_view format,
                              const std::vector<std::filesystem::path>& paths);
  template <typename FileType>
  static WeightSet open_index(const std::filesystem::path& dir, std::string_view format,
                              const std::filesystem::path& index);
  template <typename FileType>
  void add(std::shared_ptr<const FileType> file);
  const File& file_holding(std::string_view name) const;

  std::filesystem::path dir_;
  std::string format_;
  std::vector<File> files_;
  std::map<std::string, std::size_t, std::less<>> file_index_;  // tensor name -> index into files_
};

}  // namespace kiln::checkpoint
