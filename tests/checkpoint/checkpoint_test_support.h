// Builders for the checkpoint tests: temporary directories, and safetensors
// files, ZIP archives and torch-style pickles assembled byte by byte, so that
// malformed and unusual inputs can be written without Python.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/temp_dir.h"

namespace kiln::checkpoint::testing {

inline const std::filesystem::path kModels = std::filesystem::path(KILN_FIXTURES) / "models";

using kiln::test::TempDir;
using kiln::test::write_file;

template <typename T>
std::string little_endian(T value) {
  std::string out;
  for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>(static_cast<uint64_t>(value) >> (8 * i) & 0xff);
  return out;
}

// The raw bytes of values of a trivially copyable type (the host is little-endian, as the formats are).
template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// A safetensors file: 8-byte little-endian header length, JSON header padded
// with spaces to 8 bytes (so that the data is aligned, as writers do), data.
inline std::string safetensors_bytes(std::string_view header, std::string_view data) {
  std::string padded(header);
  padded.resize((padded.size() + 7) / 8 * 8, ' ');
  return little_endian<uint64_t>(padded.size()) + padded + std::string(data);
}

inline std::string raw_deflate(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A ZIP archive laid out as torch writes one: local headers whose extra field
// pads the data to 64 bytes (the central directory has no such field), and
// optionally the ZIP64 end records and extra fields.
class ZipWriter {
 public:
  ZipWriter& stored(std::string name, std::string data) { return add(std::move(name), std::move(data), false); }
  ZipWriter& deflated(std::string name, std::string data) { return add(std::move(name), std::move(data), true); }

  std::string finish(bool zip64 = false) const {
    std::string out;
    std::string central;
    for (const Entry& e : entries_) {
      const auto offset = static_cast<uint32_t>(out.size());
      const std::size_t unpadded = out.size() + 30 + e.name.size() + 4;
      const std::size_t padding = (64 - unpadded % 64) % 64;
      const std::string extra = little_endian<uint16_t>(0x4246) + little_endian<uint16_t>(padding) +
                                std::string(padding, 'Z');  // torch's "FB" padding field
      out += header(0x04034b50, e, e.compressed.size(), e.data.size(), extra.size()) + e.name + extra + e.compressed;

      const uint32_t saturated = 0xffffffffu;
      std::string central_extra;
      if (zip64) {
        central_extra = little_endian<uint16_t>(1) + little_endian<uint16_t>(24) +
                        little_endian<uint64_t>(e.data.size()) + little_endian<uint64_t>(e.compressed.size()) +
                        little_endian<uint64_t>(offset);
      }
      central +=
          little_endian<uint32_t>(0x02014b50) + little_endian<uint16_t>(45) +
          header(0, e, zip64 ? saturated : e.compressed.size(), zip64 ? saturated : e.data.size(), central_extra.size())
              .substr(4) +
          little_endian<uint16_t>(0) + little_endian<uint16_t>(0) + little_endian<uint16_t>(0) +
          little_endian<uint32_t>(0) + little_endian<uint32_t>(zip64 ? saturated : offset) + e.name + central_extra;
    }
    const uint64_t central_offset = out.size();
    out += central;
    const uint64_t count = entries_.size();
    if (zip64) {
      const uint64_t end64_offset = out.size();
      out += little_endian<uint32_t>(0x06064b50) + little_endian<uint64_t>(44) + little_endian<uint16_t>(45) +
             little_endian<uint16_t>(45) + little_endian<uint32_t>(0) + little_endian<uint32_t>(0) +
             little_endian<uint64_t>(count) + little_endian<uint64_t>(count) + little_endian<uint64_t>(central.size()) +
             little_endian<uint64_t>(central_offset);
      out += little_endian<uint32_t>(0x07064b50) + little_endian<uint32_t>(0) + little_endian<uint64_t>(end64_offset) +
             little_endian<uint32_t>(1);
    }
    out += little_endian<uint32_t>(0x06054b50) + little_endian<uint16_t>(0) + little_endian<uint16_t>(0) +
           little_endian<uint16_t>(zip64 ? 0xffff : count) + little_endian<uint16_t>(zip64 ? 0xffff : count) +
           little_endian<uint32_t>(zip64 ? 0xffffffffu : central.size()) +
           little_endian<uint32_t>(zip64 ? 0xffffffffu : central_offset) + little_endian<uint16_t>(0);
    return out;
  }

 private:
  struct Entry {
    std::string name;
    std::string data;
    std::string compressed;
    bool deflate;
  };

  ZipWriter& add(std::string name, std::string data, bool deflate) {
    std::string compressed = deflate ? raw_deflate(data) : data;
    entries_.push_back({std::move(name), std::move(data), std::move(compressed), deflate});
    return *this;
  }

  // Signature, version, flags, method, time, date, CRC, sizes, name and extra
  // lengths: the fields local and central headers share.
  static std::string header(uint32_t signature, const Entry& e, uint32_t compressed_size, uint32_t size,
                            std::size_t extra_size) {
    const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), e.data.size()));
    return little_endian<uint32_t>(signature) + little_endian<uint16_t>(20) + little_endian<uint16_t>(0) +
           little_endian<uint16_t>(e.deflate ? 8 : 0) + little_endian<uint32_t>(0) + little_endian<uint32_t>(crc) +
           little_endian<uint32_t>(compressed_size) + little_endian<uint32_t>(size) +
           little_endian<uint16_t>(e.name.size()) + little_endian<uint16_t>(extra_size);
  }

  std::vector<Entry> entries_;
};

// Pickle opcodes by hand, as torch.save (protocol 2) emits them.
class PickleWriter {
 public:
  PickleWriter& op(uint8_t code) {
    out_ += static_cast<char>(code);
    return *this;
  }
  PickleWriter& proto(uint8_t version) { return op(0x80).op(version); }
  PickleWriter& mark() { return op('('); }
  PickleWriter& unicode(std::string_view s) {
    op('X');
    out_ += little_endian<uint32_t>(s.size()) + std::string(s);
    return *this;
  }
  PickleWriter& global(std::string_view module, std::string_view name) {
    op('c');
    out_ += std::string(module) + "\n" + std::string(name) + "\n";
    return *this;
  }
  PickleWriter& int1(uint8_t v) { return op('K').op(v); }
  PickleWriter& int4(int32_t v) {
    op('J');
    out_ += little_endian<uint32_t>(static_cast<uint32_t>(v));
    return *this;
  }
  PickleWriter& put(uint8_t key) { return op('q').op(key); }
  PickleWriter& get(uint8_t key) { return op('h').op(key); }
  PickleWriter& ints_tuple(const std::vector<int32_t>& values) {
    mark();
    for (int32_t v : values) int4(v);
    return op('t');
  }
  // What torch.save writes for one tensor: _rebuild_tensor_v2 applied to
  // (persistent storage id, offset, size, stride, requires_grad, hooks).
  PickleWriter& tensor(std::string_view storage_type, std::string_view key, int32_t storage_numel, int32_t offset,
                       const std::vector<int32_t>& size, const std::vector<int32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().unicode("storage").global("torch", storage_type).unicode(key).unicode("cpu").int4(storage_numel).op('t');
    op('Q');                                                    // BINPERSID
    int4(offset).ints_tuple(size).ints_tuple(stride).op(0x89);  // NEWFALSE: requires_grad
    global("collections", "OrderedDict").op(')').op('R');       // backward hooks
    return op('t').op('R');
  }
  PickleWriter& stop() { return op('.'); }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// A torch.save archive: <folder>/data.pkl, <folder>/byteorder, <folder>/data/<key>.
inline std::string torch_archive(const std::string& folder, const std::string& pickle,
                                 const std::vector<std::pair<std::string, std::string>>& storages) {
  ZipWriter zip;
  zip.stored(folder + "/data.pkl", pickle).stored(folder + "/byteorder", "little");
  for (const auto& [key, bytes] : storages) zip.stored(folder + "/data/" + key, bytes);
  return zip.stored(folder + "/version", "3\n").finish(true);
}

}  // namespace kiln::checkpoint::testing
