#include "engine/checksum.h"

#include <algorithm>
#include <cstring>

namespace kiln::engine {
namespace {
constexpr uint64_t kPrime = 0x9e3779b185ebca87ull;
inline uint64_t mix(uint64_t lane, uint64_t word) {
  lane ^= word * kPrime;
  lane = (lane << 31) | (lane >> 33);
  return lane * 0xc2b2ae3d27d4eb4full;
}
}  // namespace

void Checksum64::block(const unsigned char* p) {
  for (int i = 0; i < 4; ++i) {
    uint64_t w;
    std::memcpy(&w, p + 8 * i, 8);
    lanes_[i] = mix(lanes_[i], w);
  }
}

void Checksum64::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += n;
  if (tail_size_ > 0) {
    const std::size_t take = std::min(n, sizeof tail_ - tail_size_);
    std::memcpy(tail_ + tail_size_, p, take);
    tail_size_ += take;
    p += take;
    n -= take;
    if (tail_size_ < sizeof tail_) return;
    block(tail_);
    tail_size_ = 0;
  }
  while (n >= 32) {
    block(p);
    p += 32;
    n -= 32;
  }
  std::memcpy(tail_, p, n);
  tail_size_ = n;
}

uint64_t Checksum64::digest() const {
  uint64_t h = total_ * kPrime;
  for (uint64_t lane : lanes_) h = mix(h, lane);
  for (std::size_t i = 0; i < tail_size_; ++i) h = mix(h, tail_[i] + (uint64_t(i) << 8));
  return h ^ (h >> 29);
}

namespace {

constexpr uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ChunkChecksum's keys: one per lane of each stripe position, and per lane for
// the scramble; fixed by the format (a seed, through splitmix64).
constexpr ChunkChecksum::Keys make_chunk_keys() {
  ChunkChecksum::Keys k{};
  uint64_t seed = 0x6b696c6e2d763131ull;
  for (auto& row : k.stripe) {
    for (auto& key : row) key = splitmix64(seed);
  }
  for (auto& key : k.scramble) key = splitmix64(seed);
  return k;
}

constexpr ChunkChecksum::Keys kChunkKeys = make_chunk_keys();

}  // namespace

const ChunkChecksum::Keys& ChunkChecksum::keys() { return kChunkKeys; }

void ChunkChecksum::stripe(uint64_t* acc, const unsigned char* p, int index) {
  uint64_t v[kLanes];
  std::memcpy(v, p, sizeof v);
  for (int i = 0; i < kLanes; ++i) {
    const uint64_t k = v[i] ^ kChunkKeys.stripe[index][i];
    acc[i] += (k & 0xffffffffu) * (k >> 32);
    // The product alone cannot see every bit (a zero half hides the other): the
    // word itself joins the neighbouring lane.
    acc[i ^ 1] += v[i];
  }
}

void ChunkChecksum::scramble(uint64_t* acc) {
  for (int i = 0; i < kLanes; ++i) {
    uint64_t a = acc[i];
    a ^= a >> 47;
    a ^= kChunkKeys.scramble[i];
    acc[i] = a * kScrambleMultiplier;
  }
}

void ChunkChecksum::block(const unsigned char* p) {
  for (int s = 0; s < kStripesPerBlock; ++s) stripe(acc_, p + s * kStripeBytes, s);
  scramble(acc_);
}

void ChunkChecksum::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += n;
  if (tail_size_ > 0) {
    const std::size_t take = std::min(n, kBlockBytes - tail_size_);
    std::memcpy(tail_ + tail_size_, p, take);
    tail_size_ += take;
    p += take;
    n -= take;
    if (tail_size_ < kBlockBytes) return;
    block(tail_);
    tail_size_ = 0;
  }
  while (n >= kBlockBytes) {
    block(p);
    p += kBlockBytes;
    n -= kBlockBytes;
  }
  std::memcpy(tail_, p, n);
  tail_size_ = n;
}

uint64_t ChunkChecksum::digest() const {
  uint64_t acc[kLanes];
  std::memcpy(acc, acc_, sizeof acc);
  // The unfinished block's stripes, the last one padded with zeros (the
  // length, mixed in below, tells the padding from data).
  for (std::size_t at = 0, s = 0; at < tail_size_; at += kStripeBytes, ++s) {
    unsigned char padded[kStripeBytes] = {};
    std::memcpy(padded, tail_ + at, std::min(kStripeBytes, tail_size_ - at));
    stripe(acc, padded, static_cast<int>(s));
  }
  scramble(acc);
  return finish(acc, total_);
}

uint64_t ChunkChecksum::finish(const uint64_t (&lanes)[kLanes], uint64_t total_bytes) {
  uint64_t h = total_bytes * kPrime;
  for (uint64_t lane : lanes) h = mix(h, lane);
  return h ^ (h >> 29);
}

void BlobChecksum::update(const void* data, std::size_t n) {
  whole_.update(data, n);
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {
    const std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(n, kChunkBytes - chunk_fill_));
    chunk_.update(p, take);
    chunk_fill_ += take;
    p += take;
    n -= take;
    if (chunk_fill_ == kChunkBytes) {
      done_.push_back(chunk_.digest());
      chunk_ = ChunkChecksum{};
      chunk_fill_ = 0;
    }
  }
}

std::vector<uint64_t> BlobChecksum::chunk_digests() const {
  std::vector<uint64_t> all = done_;
  if (chunk_fill_ > 0) all.push_back(chunk_.digest());
  return all;
}

}  // namespace kiln::engine
