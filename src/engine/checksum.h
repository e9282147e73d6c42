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

// A 64-bit checksum at memory speed, for the chunks a loader verifies while
// the weights load: Checksum64's two dependent multiplies per word hash about
// 5 GB/s on one core, slower than the memory; this one takes eight lanes of
// 32 x 32 -> 64-bit multiply-accumulate per 64-byte stripe (what AVX2 does in
// two instructions), each stripe of a 1 KiB block keyed by its position, and
// scrambles the lanes after every block, so that reordered blocks change it
// too: about 45 GB/s from cache, so memory-bound. Not cryptographic.
class ChunkChecksum {
 public:
  static constexpr int kLanes = 8;
  static constexpr std::size_t kStripeBytes = 8 * kLanes;
  static constexpr int kStripesPerBlock = 16;
  static constexpr std::size_t kBlockBytes = kStripeBytes * kStripesPerBlock;

  // The format's constants, for hashing a chunk where this class cannot run
  // (a GPU's copy of the weights) to the same digest: lanes start at
  // kInitial; each block adds its stripes (acc[i] += lo32(k) * hi32(k) with
  // k = word[i] ^ stripe key, and acc[i ^ 1] += word[i]) and then scrambles
  // every lane (a ^= a >> 47; a ^= scramble key; a *= kScrambleMultiplier);
  // the last block is the unfinished one (only the stripes holding data, the
  // last padded with zeros: none when the length is a multiple of
  // kBlockBytes), and finish() turns the lanes into the digest.
  struct Keys {
    uint64_t stripe[kStripesPerBlock][kLanes];
    uint64_t scramble[kLanes];
  };
  static const Keys& keys();
  static constexpr uint64_t kInitial[kLanes] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
                                                0x082efa98ec4e6c89ull, 0x452821e638d01377ull, 0xbe5466cf34e90c6cull,
                                                0xc0ac29b7c97c50ddull, 0x3f84d5b5b5470917ull};
  static constexpr uint64_t kScrambleMultiplier = 0x9e3779b1u;
  static uint64_t finish(const uint64_t (&lanes)[kLanes], uint64_t total_bytes);

  void update(const void* data, std::size_t n);
  uint64_t digest() const;

 private:
  static void stripe(uint64_t* acc, const unsigned char* p, int index);
  static void scramble(uint64_t* acc);
  void block(const unsigned char* p);  // one whole kBlockBytes block
  uint64_t acc_[kLanes] = {kInitial[0], kInitial[1], kInitial[2], kInitial[3],
                           kInitial[4], kInitial[5], kInitial[6], kInitial[7]};
  unsigned char tail_[kBlockBytes] = {};
  std::size_t tail_size_ = 0;
  uint64_t total_ = 0;
};

// The checksums engine.json keeps of one blob: Checksum64 of the whole file,
// and ChunkChecksum of each kChunkBytes piece (the last one shorter), so that
// a loader can verify pieces on several threads at memory speed, while the
// weights load, instead of one sequential pass over gigabytes.
class BlobChecksum {
 public:
  static constexpr uint64_t kChunkBytes = uint64_t{4} << 20;

  void update(const void* data, std::size_t n);
  uint64_t digest() const { return whole_.digest(); }
  // One digest per chunk begun so far.
  std::vector<uint64_t> chunk_digests() const;

 private:
  Checksum64 whole_;
  ChunkChecksum chunk_;
  uint64_t chunk_fill_ = 0;  // bytes of the current chunk taken in
  std::vector<uint64_t> done_;
};

}  // namespace kiln::engine
