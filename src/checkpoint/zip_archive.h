// A minimal read-only ZIP reader over a mapped file, enough for the archives
// torch.save writes: the end-of-central-directory record (and its ZIP64 form),
// the central directory, and local headers. Stored entries are handed out as
// views into the map (torch stores tensor data uncompressed, so this is the
// zero-copy path); deflated entries are inflated with zlib into a buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace kiln::checkpoint {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

// An entry's bytes and whatever owns them (the map, or an inflated buffer).
struct ZipEntryData {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;
};

class ZipArchive {
 public:
  // Reads the central directory. Throws kiln::Error naming the archive when it
  // is not a ZIP file or its directory is damaged.
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;  // nullptr when absent
  // Throws kiln::Error naming the archive and the entry when it cannot be read.
  ZipEntryData read(const ZipEntry& entry) const;
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  std::span<const std::byte> raw_bytes(const ZipEntry& entry) const;

  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace kiln::checkpoint
