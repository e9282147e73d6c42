// A read-only memory map of a whole file. Checkpoints and engine blobs are
// mapped rather than read so that a 14 GB checkpoint costs no copy to open.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

namespace kiln {

class MappedFile {
 public:
  // Throws kiln::Error naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::filesystem::path path_;
  const std::byte* data_;
  std::size_t size_;
};

}  // namespace kiln
