// A fast 64-bit checksum for engine blobs (several GB/s: four independent
// multiply-xor lanes over 8-byte words), to detect truncated or corrupted
// copies. Not cryptographic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::engine {

class Checksum64 {
 public:
  void update(const void* data, std::size_t n);
  uint64_t digest() const;

 private:
  uint64_t lanes_[4] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull, 0x27d4eb2f165667c5ull};
  unsigned char tail_[32] = {};
  std::size_t tail_size_ = 0;
  uint64_t total_ = 0;
  void block(const unsigned char* p);
};

// The checksums engine.json keeps of one blob: Checksum64 of the whole file,
// and of each kChunkBytes piece (the last one shorter), so that a loader can
// verify pieces on several threads, each as soon as it has read them, instead
// of one sequential pass over gigabytes.
class BlobChecksum {
 public:
  static constexpr uint64_t kChunkBytes = uint64_t{64} << 20;

  void update(const void* data, std::size_t n);
  uint64_t digest() const { return whole_.digest(); }
  // One digest per chunk begun so far.
  std::vector<uint64_t> chunk_digests() const;

 private:
  Checksum64 whole_, chunk_;
  uint64_t chunk_fill_ = 0;  // bytes of the current chunk taken in
  std::vector<uint64_t> done_;
};

}  // namespace kiln::engine
