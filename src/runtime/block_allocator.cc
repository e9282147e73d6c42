#include "runtime/block_allocator.h"

#include "core/error.h"

namespace kiln::runtime {

BlockAllocator::BlockAllocator(int64_t num_blocks) : total_(num_blocks) {
  free_.reserve(static_cast<std::size_t>(num_blocks));
  // Lowest indices first, so a fresh cache fills memory from the start.
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

std::optional<int32_t> BlockAllocator::allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t b = free_.back();
  free_.pop_back();
  return b;
}

void BlockAllocator::release(int32_t block) {
  if (block < 0 || block >= total_) throw_error("KV block ", block, " is out of range");
  free_.push_back(block);
}

}  // namespace kiln::runtime
