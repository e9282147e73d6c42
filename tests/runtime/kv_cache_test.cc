#include "runtime/kv_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "core/error.h"
#include "runtime/block_allocator.h"

namespace kiln::runtime {
namespace {

KvCacheConfig config(int64_t num_blocks, int64_t block_size = 4) {
  KvCacheConfig c;
  c.num_layers = 3;
  c.kv_heads = 2;
  c.head_dim = 8;
  c.block_size = block_size;
  c.num_blocks = num_blocks;
  return c;
}

TEST(BlockAllocator, HandsOutEveryBlockOnceLowestFirst) {
  BlockAllocator a(5);
  EXPECT_EQ(a.total_blocks(), 5);
  EXPECT_EQ(a.free_blocks(), 5);
  for (int32_t expected = 0; expected < 5; ++expected) {
    const auto b = a.allocate();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(*b, expected);
  }
  EXPECT_EQ(a.free_blocks(), 0);
  EXPECT_FALSE(a.allocate().has_value());
  a.release(3);
  EXPECT_EQ(a.free_blocks(), 1);
  EXPECT_EQ(a.allocate(), 3);
  EXPECT_THROW(a.release(5), Error);
  EXPECT_THROW(a.release(-1), Error);
  BlockAllocator empty(0);
  EXPECT_FALSE(empty.allocate().has_value());
}

TEST(KvCache, BytesPerTokenCountsKAndVOfEveryLayer) {
  // K and V (2) x 3 layers x 2 heads x 8 dims x 4 bytes.
  EXPECT_EQ(config(1).bytes_per_token(), 2 * 3 * 2 * 8 * 4);
}

TEST(KvCache, ReserveGrowsByWholeBlocks) {
  KvCache cache(config(10));
  SequenceKv seq;
  EXPECT_TRUE(cache.reserve(seq, 0));
  EXPECT_TRUE(seq.blocks.empty());
  EXPECT_TRUE(cache.reserve(seq, 1));
  EXPECT_EQ(seq.blocks.size(), 1u);
  EXPECT_TRUE(cache.reserve(seq, 4));  // still one block of 4
  EXPECT_EQ(seq.blocks.size(), 1u);
  EXPECT_TRUE(cache.reserve(seq, 5));
  EXPECT_EQ(seq.blocks.size(), 2u);
  EXPECT_TRUE(cache.reserve(seq, 3));  // shrinking asks for nothing and frees nothing
  EXPECT_EQ(seq.blocks.size(), 2u);
  EXPECT_TRUE(cache.reserve(seq, 17));  // ceil(17 / 4) = 5
  EXPECT_EQ(seq.blocks.size(), 5u);
  EXPECT_EQ(cache.free_blocks(), 5);
}

TEST(KvCache, SequencesNeverShareBlocksAndReleaseReturnsThemAll) {
  KvCache cache(config(12));
  SequenceKv a, b, c;
  ASSERT_TRUE(cache.reserve(a, 9));   // 3 blocks
  ASSERT_TRUE(cache.reserve(b, 16));  // 4 blocks
  ASSERT_TRUE(cache.reserve(c, 1));   // 1 block
  EXPECT_EQ(cache.free_blocks(), 12 - 8);
  std::set<int32_t> all;
  for (const auto* s : {&a, &b, &c}) {
    for (int32_t blk : s->blocks) {
      EXPECT_GE(blk, 0);
      EXPECT_LT(blk, 12);
      EXPECT_TRUE(all.insert(blk).second) << "block " << blk << " handed out twice";
    }
  }
  b.length = 16;
  cache.release(b);
  EXPECT_TRUE(b.blocks.empty());
  EXPECT_EQ(b.length, 0);
  EXPECT_EQ(cache.free_blocks(), 8);
  // The freed blocks are reusable.
  SequenceKv d;
  ASSERT_TRUE(cache.reserve(d, 32));  // 8 blocks: everything left
  EXPECT_EQ(cache.free_blocks(), 0);
  cache.release(a);
  cache.release(c);
  cache.release(d);
  EXPECT_EQ(cache.free_blocks(), 12);
}

TEST(KvCache, FailedReserveAllocatesNothing) {
  KvCache cache(config(5));
  SequenceKv big, small;
  ASSERT_TRUE(cache.reserve(big, 8));  // 2 blocks, 3 left
  const std::vector<int32_t> before = big.blocks;
  EXPECT_FALSE(cache.reserve(big, 24));  // needs 4 more: only 3 free
  EXPECT_EQ(big.blocks, before) << "no partial growth";
  EXPECT_EQ(cache.free_blocks(), 3);
  EXPECT_FALSE(cache.reserve(small, 13));  // needs 4
  EXPECT_TRUE(small.blocks.empty());
  EXPECT_EQ(cache.free_blocks(), 3);
  EXPECT_TRUE(cache.reserve(small, 12));  // exactly 3 fits
  EXPECT_EQ(cache.free_blocks(), 0);
  EXPECT_FALSE(cache.reserve(big, 9));
  EXPECT_EQ(big.blocks.size(), 2u);
}

}  // namespace
}  // namespace kiln::runtime
