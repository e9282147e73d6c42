// The paged KV cache's bookkeeping: each sequence owns a block table (block
// indices in order), grown as it gets longer and released when it ends. The
// scheduler asks reserve() before a step and preempts when it fails; the
// backend stores K and V as [layer][block][slot][kv_head][head_dim].
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/block_allocator.h"

namespace kiln::runtime {

struct KvCacheConfig {
  int64_t num_layers = 0;
  int64_t kv_heads = 0;  // per rank
  int64_t head_dim = 0;
  int64_t block_size = 16;  // tokens per block
  int64_t num_blocks = 0;
  int64_t bytes_per_token() const;  // all layers, K and V, fp32
};

struct SequenceKv {
  std::vector<int32_t> blocks;
  int64_t length = 0;  // tokens whose K and V are stored
};

class KvCache {
 public:
  explicit KvCache(KvCacheConfig config);
  const KvCacheConfig& config() const { return config_; }
  // Makes room for `length` tokens; false (and nothing allocated) when the
  // cache has too few free blocks.
  bool reserve(SequenceKv& seq, int64_t length);
  void release(SequenceKv& seq);
  int64_t free_blocks() const { return allocator_.free_blocks(); }

 private:
  KvCacheConfig config_;
  BlockAllocator allocator_;
};

}  // namespace kiln::runtime
