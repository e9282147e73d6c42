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

uint64_t chunk_digest(const std::vector<unsigned char>& data) {
  ChunkChecksum c;
  c.update(data.data(), data.size());
  return c.digest();
}

// The same bytes give the same digest however the updates cut them, across
// stripe and block boundaries and in the unfinished last block.
TEST(ChunkChecksum, IndependentOfHowTheUpdatesCutTheBytes) {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{1023},
                              std::size_t{1024}, std::size_t{1025}, std::size_t{100000}}) {
    const auto data = random_bytes(n, static_cast<uint32_t>(n));
    const uint64_t whole = chunk_digest(data);
    for (const std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000}}) {
      ChunkChecksum c;
      for (std::size_t at = 0; at < n; at += step) c.update(data.data() + at, std::min(step, n - at));
      EXPECT_EQ(c.digest(), whole) << n << " bytes in pieces of " << step;
    }
  }
}

// What a damaged copy looks like: any one bit flipped, two blocks or two
// stripes swapped, a trailing zero byte added or lost.
TEST(ChunkChecksum, ChangesWithEveryDamageACopyCanSuffer) {
  const auto data = random_bytes(4096 + 100, 21);
  const uint64_t original = chunk_digest(data);
  std::set<uint64_t> seen{original};
  for (std::size_t bit = 0; bit < data.size() * 8; bit += 13) {
    auto flipped = data;
    flipped[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    EXPECT_TRUE(seen.insert(chunk_digest(flipped)).second) << "bit " << bit;
  }
  auto blocks = data;
  std::swap_ranges(blocks.begin(), blocks.begin() + 1024, blocks.begin() + 1024);
  EXPECT_NE(chunk_digest(blocks), original);
  auto stripes = data;
  std::swap_ranges(stripes.begin(), stripes.begin() + 64, stripes.begin() + 128);
  EXPECT_NE(chunk_digest(stripes), original);
  auto longer = data;
  longer.push_back(0);
  EXPECT_NE(chunk_digest(longer), original);
  std::vector<unsigned char> zeros(2048, 0), fewer(2047, 0);
  EXPECT_NE(chunk_digest(zeros), chunk_digest(fewer));
}

// BlobChecksum's chunk digests are ChunkChecksum of each kChunkBytes piece, cut
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
    ChunkChecksum piece;
    piece.update(data.data() + begin, end - begin);
    EXPECT_EQ(chunks[i], piece.digest()) << "chunk " << i;
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
