#include "engine/checksum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace kiln::engine {
namespace {

std::vector<unsigned char> random_bytes(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> out(n);
  for (auto& b : out) b = static_cast<unsigned char>(rng());
  return out;
}

uint64_t digest_whole(const std::vector<unsigned char>& data) {
  Checksum64 c;
  c.update(data.data(), data.size());
  return c.digest();
}

// Feeds `data` in pieces whose sizes cycle through `sizes`.
uint64_t digest_in_pieces(const std::vector<unsigned char>& data, const std::vector<std::size_t>& sizes) {
  Checksum64 c;
  std::size_t pos = 0, i = 0;
  while (pos < data.size()) {
    const std::size_t n = std::min(sizes[i++ % sizes.size()], data.size() - pos);
    c.update(data.data() + pos, n);
    pos += n;
  }
  return c.digest();
}

TEST(Checksum64, IndependentOfHowTheDataIsSplit) {
  for (std::size_t size : {0u, 1u, 31u, 32u, 33u, 63u, 64u, 65u, 100u, 1000u, 4099u}) {
    SCOPED_TRACE(size);
    const auto data = random_bytes(size, static_cast<uint32_t>(size) + 1);
    const uint64_t whole = digest_whole(data);
    for (const auto& sizes : std::vector<std::vector<std::size_t>>{
             {1}, {2}, {3}, {7}, {31}, {32}, {33}, {64}, {5, 0, 27, 1}, {31, 2}, {100, 1, 1}}) {
      EXPECT_EQ(digest_in_pieces(data, sizes), whole) << "pieces cycling from " << sizes[0];
    }
  }
  // Empty updates change nothing.
  Checksum64 a, b;
  a.update(nullptr, 0);
  EXPECT_EQ(a.digest(), b.digest());
}

TEST(Checksum64, ChangesWhenAnyOneByteChanges) {
  const auto data = random_bytes(203, 7);  // 6 full 32-byte blocks and an 11-byte tail
  const uint64_t original = digest_whole(data);
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      auto changed = data;
      changed[i] ^= flip;
      ASSERT_NE(digest_whole(changed), original) << "byte " << i << " ^ " << int(flip);
    }
  }
}

TEST(Checksum64, DependsOnLengthAndOrder) {
  std::set<uint64_t> seen;
  for (std::size_t n = 0; n <= 96; ++n) seen.insert(digest_whole(std::vector<unsigned char>(n, 0)));
  EXPECT_EQ(seen.size(), 97u) << "runs of zeros of different lengths must differ";

  auto data = random_bytes(64, 3);
  const uint64_t original = digest_whole(data);
  ASSERT_NE(data[0], data[32]);
  std::swap(data[0], data[32]);  // same bytes, other lanes
  EXPECT_NE(digest_whole(data), original);
  std::vector<unsigned char> swapped_tail = {1, 2, 3};
  EXPECT_NE(digest_whole(swapped_tail), digest_whole({3, 2, 1}));
}

TEST(Checksum64, DigestDoesNotConsumeState) {
  const auto data = random_bytes(100, 9);
  Checksum64 c;
  c.update(data.data(), 50);
  const uint64_t partial = c.digest();
  EXPECT_EQ(c.digest(), partial);
  c.update(data.data() + 50, 50);
  EXPECT_EQ(c.digest(), digest_whole(data));
}

// BlobChecksum's chunk digests are Checksum64 of each kChunkBytes piece, cut
// wherever the updates fall, and its whole digest is Checksum64 of everything.
TEST(BlobChecksum, ChunksAreChecksumsOfEachPiece) {
  const std::size_t chunk = BlobChecksum::kChunkBytes;
  const auto data = random_bytes(2 * chunk + 1000, 11);
  BlobChecksum blob;
  // Updates that straddle both chunk boundaries.
  const std::size_t cuts[] = {0, 1000, chunk + 7, 2 * chunk + 999, data.size()};
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) blob.update(data.data() + cuts[i], cuts[i + 1] - cuts[i]);
  EXPECT_EQ(blob.digest(), digest_whole(data));
  const auto chunks = blob.chunk_digests();
  ASSERT_EQ(chunks.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::size_t begin = i * chunk, end = std::min(data.size(), begin + chunk);
    EXPECT_EQ(chunks[i], digest_whole({data.begin() + static_cast<std::ptrdiff_t>(begin),
                                       data.begin() + static_cast<std::ptrdiff_t>(end)}))
        << "chunk " << i;
  }
}

TEST(BlobChecksum, ExactMultipleHasNoEmptyTrailingChunk) {
  const auto data = random_bytes(BlobChecksum::kChunkBytes, 12);
  BlobChecksum blob;
  blob.update(data.data(), data.size());
  EXPECT_EQ(blob.chunk_digests().size(), 1u);
  EXPECT_EQ(BlobChecksum{}.chunk_digests().size(), 0u);
}

}  // namespace
}  // namespace kiln::engine
