// Hands out fixed-size KV-cache blocks by index. Knows nothing of where the
// blocks live (host or device memory): the backend owns the storage.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace kiln::runtime {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t num_blocks);
  std::optional<int32_t> allocate();
  void release(int32_t block);
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t total_blocks() const { return total_; }

 private:
  int64_t total_;
  std::vector<int32_t> free_;
};

}  // namespace kiln::runtime
