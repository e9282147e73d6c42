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
      chunk_ = Checksum64{};
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
