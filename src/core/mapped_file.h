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

// Maps the pages of [p, p + n) (any mapping) in one system call rather than a
// fault per page, for reading or for writing; a no-op where the kernel cannot
// (before Linux 5.14). Only a speed-up: the pages fault in anyway when touched.
void prefault(const void* p, std::size_t n, bool for_write);

}  // namespace kiln
