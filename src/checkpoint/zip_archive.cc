#include "checkpoint/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr std::size_t kEndRecordSize = 22;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kLocalHeaderSize = 30;
constexpr std::size_t kCentralHeaderSize = 46;
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;
constexpr uint32_t kSaturated32 = 0xffffffffu;  // "the real value is in the ZIP64 extra field"

// Little-endian reads from a byte range, each checked against its end; `what`
// names the structure being read for the error message.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, uint64_t pos, const std::filesystem::path& archive, std::string what)
      : bytes_(bytes), pos_(pos), archive_(archive), what_(std::move(what)) {}

  uint16_t u16() { return static_cast<uint16_t>(little_endian(2)); }
  uint32_t u32() { return static_cast<uint32_t>(little_endian(4)); }
  uint64_t u64() { return little_endian(8); }
  std::span<const std::byte> take(uint64_t n) {
    require(n);
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  void skip(uint64_t n) { take(n); }
  uint64_t pos() const { return pos_; }

 private:
  void require(uint64_t n) const {
    if (pos_ > bytes_.size() || n > bytes_.size() - pos_) {
      throw_error("zip archive ", archive_.string(), ": truncated ", what_);
    }
  }
  uint64_t little_endian(int n) {
    const auto b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<uint64_t>(b[i]);
    return v;
  }

  std::span<const std::byte> bytes_;
  uint64_t pos_;
  const std::filesystem::path& archive_;
  std::string what_;
};

std::string as_string(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

struct CentralDirectory {
  uint64_t offset;
  uint64_t size;
  uint64_t entry_count;
};

// Searches backwards for the end-of-central-directory record (it is followed
// by a comment of up to 64 KiB), then prefers its ZIP64 form when a locator
// precedes it, as torch writes for every archive.
CentralDirectory find_central_directory(std::span<const std::byte> bytes, const std::filesystem::path& archive) {
  if (bytes.size() < kEndRecordSize) throw_error("zip archive ", archive.string(), ": not a ZIP file (too short)");
  const uint64_t last = bytes.size() - kEndRecordSize;
  const uint64_t first = last > 0xffff ? last - 0xffff : 0;
  for (uint64_t pos = last + 1; pos-- > first;) {
    Cursor end(bytes, pos, archive, "end of central directory");
    if (end.u32() != kEndSignature) continue;
    end.skip(6);  // disk numbers, entries on this disk
    CentralDirectory dir{};
    dir.entry_count = end.u16();
    dir.size = end.u32();
    dir.offset = end.u32();
    if (pos < kZip64LocatorSize) return dir;
    Cursor locator(bytes, pos - kZip64LocatorSize, archive, "ZIP64 locator");
    if (locator.u32() != kZip64LocatorSignature) return dir;
    locator.skip(4);  // disk number
    Cursor end64(bytes, locator.u64(), archive, "ZIP64 end of central directory");
    if (end64.u32() != kZip64EndSignature) {
      throw_error("zip archive ", archive.string(), ": ZIP64 end-of-central-directory record not found");
    }
    end64.skip(8 + 2 + 2 + 4 + 4 + 8);  // record size, versions, disk numbers, entries on this disk
    dir.entry_count = end64.u64();
    dir.size = end64.u64();
    dir.offset = end64.u64();
    return dir;
  }
  throw_error("zip archive ", archive.string(), ": not a ZIP file (no end-of-central-directory record)");
}

// The ZIP64 extra field holds, in this order, only those of the three values
// that the 32-bit header fields could not.
void apply_zip64_extra(std::span<const std::byte> extra, ZipEntry& entry, bool size_saturated, bool csize_saturated,
                       bool offset_saturated, const std::filesystem::path& archive) {
  Cursor fields(extra, 0, archive, concat("extra fields of entry ", entry.name));
  while (fields.pos() < extra.size()) {
    const uint16_t id = fields.u16();
    const uint16_t size = fields.u16();
    const auto data = fields.take(size);
    if (id != kZip64ExtraId) continue;
    Cursor zip64(data, 0, archive, concat("ZIP64 extra field of entry ", entry.name));
    if (size_saturated) entry.uncompressed_size = zip64.u64();
    if (csize_saturated) entry.compressed_size = zip64.u64();
    if (offset_saturated) entry.local_header_offset = zip64.u64();
    return;
  }
  if (size_saturated || csize_saturated || offset_saturated) {
    throw_error("zip archive ", archive.string(), ": entry ", entry.name, " lacks its ZIP64 extra field");
  }
}

ZipEntry read_central_entry(Cursor& dir, const std::filesystem::path& archive) {
  if (dir.u32() != kCentralHeaderSignature) {
    throw_error("zip archive ", archive.string(), ": damaged central directory (bad signature at offset ",
                dir.pos() - 4, ")");
  }
  ZipEntry entry;
  dir.skip(4);  // versions
  const uint16_t flags = dir.u16();
  entry.method = dir.u16();
  dir.skip(4);  // time, date
  entry.crc32 = dir.u32();
  const uint32_t csize = dir.u32();
  const uint32_t usize = dir.u32();
  const uint16_t name_length = dir.u16();
  const uint16_t extra_length = dir.u16();
  const uint16_t comment_length = dir.u16();
  dir.skip(8);  // disk number, attributes
  const uint32_t offset = dir.u32();
  entry.name = as_string(dir.take(name_length));
  entry.compressed_size = csize;
  entry.uncompressed_size = usize;
  entry.local_header_offset = offset;
  apply_zip64_extra(dir.take(extra_length), entry, usize == kSaturated32, csize == kSaturated32, offset == kSaturated32,
                    archive);
  dir.skip(comment_length);
  if (flags & 1u) throw_error("zip archive ", archive.string(), ": entry ", entry.name, " is encrypted");
  return entry;
}

struct InflateStream {
  z_stream z{};
  InflateStream() = default;
  InflateStream(const InflateStream&) = delete;
  InflateStream& operator=(const InflateStream&) = delete;
  ~InflateStream() { inflateEnd(&z); }
};

// Raw-inflates `in` into exactly `out.size()` bytes, in chunks because zlib
// counts bytes in 32-bit fields.
void inflate_exact(std::span<const std::byte> in, std::span<std::byte> out, const std::string& where) {
  InflateStream stream;
  if (inflateInit2(&stream.z, -MAX_WBITS) != Z_OK) throw_error(where, ": cannot initialise zlib");
  constexpr uint64_t kChunk = std::numeric_limits<uInt>::max();
  uint64_t in_pos = 0;
  uint64_t out_pos = 0;
  Bytef no_output;  // zlib refuses a null output pointer even when there is nothing to write
  stream.z.next_out = &no_output;
  for (;;) {
    if (stream.z.avail_in == 0) {
      const uint64_t n = std::min<uint64_t>(kChunk, in.size() - in_pos);
      stream.z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + in_pos));
      stream.z.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (stream.z.avail_out == 0) {
      const uint64_t n = std::min<uint64_t>(kChunk, out.size() - out_pos);
      if (n > 0) stream.z.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
      stream.z.avail_out = static_cast<uInt>(n);
      out_pos += n;
    }
    const int rc = inflate(&stream.z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR) {
      throw_error(where, ": deflate data does not match its size (truncated, or larger than ", out.size(), " bytes)");
    }
    if (rc != Z_OK) {
      throw_error(where, ": corrupt deflate data (", stream.z.msg != nullptr ? stream.z.msg : "zlib error", ")");
    }
  }
  if (stream.z.total_out != out.size()) {
    throw_error(where, ": inflated to ", stream.z.total_out, " bytes, the directory says ", out.size());
  }
}

}  // namespace

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const std::span<const std::byte> bytes(file_->data(), file_->size());
  const CentralDirectory dir = find_central_directory(bytes, path());
  if (dir.offset > bytes.size() || dir.size > bytes.size() - dir.offset) {
    throw_error("zip archive ", path().string(), ": central directory lies past the end of the file");
  }
  Cursor cursor(bytes.subspan(dir.offset, dir.size), 0, path(), "central directory");
  // A damaged end record may claim any count; the directory's size bounds it.
  entries_.reserve(std::min(dir.entry_count, dir.size / kCentralHeaderSize));
  for (uint64_t i = 0; i < dir.entry_count; ++i) {
    entries_.push_back(read_central_entry(cursor, path()));
    index_.emplace(entries_.back().name, entries_.size() - 1);
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

// The local header repeats name and extra field with lengths of its own (torch
// pads the extra field to align data), so the data offset comes from it, while
// sizes come from the central directory (the local copy may be zero when a data
// descriptor follows).
std::span<const std::byte> ZipArchive::raw_bytes(const ZipEntry& entry) const {
  const std::span<const std::byte> bytes(file_->data(), file_->size());
  Cursor local(bytes, entry.local_header_offset, path(), concat("local header of entry ", entry.name));
  if (local.u32() != kLocalHeaderSignature) {
    throw_error("zip archive ", path().string(), ": entry ", entry.name, " has no local header at offset ",
                entry.local_header_offset);
  }
  local.skip(kLocalHeaderSize - 4 - 4);  // up to the name and extra lengths
  const uint16_t name_length = local.u16();
  const uint16_t extra_length = local.u16();
  local.skip(name_length + extra_length);
  Cursor data(bytes, local.pos(), path(), concat("data of entry ", entry.name));
  return data.take(entry.compressed_size);
}

ZipEntryData ZipArchive::read(const ZipEntry& entry) const {
  const std::span<const std::byte> raw = raw_bytes(entry);
  const std::string where = concat("zip archive ", path().string(), ": entry ", entry.name);
  if (entry.method == kStored) {
    if (entry.compressed_size != entry.uncompressed_size) {
      throw_error(where, ": stored entry has compressed size ", entry.compressed_size, " but size ",
                  entry.uncompressed_size);
    }
    return ZipEntryData{raw, file_};
  }
  if (entry.method != kDeflated) throw_error(where, ": unsupported compression method ", entry.method);
  auto buffer = std::make_shared_for_overwrite<std::byte[]>(entry.uncompressed_size);
  const std::span<std::byte> out(buffer.get(), entry.uncompressed_size);
  inflate_exact(raw, out, where);
  const auto crc = crc32_z(0, reinterpret_cast<const Bytef*>(out.data()), out.size());
  if (crc != entry.crc32) throw_error(where, ": CRC mismatch (data is corrupt)");
  return ZipEntryData{out, std::move(buffer)};
}

}  // namespace kiln::checkpoint
