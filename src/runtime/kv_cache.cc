#include "runtime/kv_cache.h"

namespace kiln::runtime {

int64_t KvCacheConfig::bytes_per_token() const {
  return 2 * num_layers * kv_heads * head_dim * static_cast<int64_t>(sizeof(float));
}

KvCache::KvCache(KvCacheConfig config) : config_(config), allocator_(config.num_blocks) {}

bool KvCache::reserve(SequenceKv& seq, int64_t length) {
  const int64_t needed = (length + config_.block_size - 1) / config_.block_size;
  const int64_t missing = needed - static_cast<int64_t>(seq.blocks.size());
  if (missing <= 0) return true;
  if (missing > allocator_.free_blocks()) return false;
  for (int64_t i = 0; i < missing; ++i) seq.blocks.push_back(*allocator_.allocate());
  return true;
}

void KvCache::release(SequenceKv& seq) {
  for (int32_t b : seq.blocks) allocator_.release(b);
  seq.blocks.clear();
  seq.length = 0;
}

}  // namespace kiln::runtime
