// How big transfers are split and how many requests run at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace kiln::storage {

struct TransferOptions {
  int64_t part_size = 8 << 20;             // multipart part and ranged-GET size
  int64_t multipart_threshold = 16 << 20;  // files above this go in parts
  int file_concurrency = 8;                // files in flight in a tree copy
  int part_concurrency = 8;                // parts in flight per large file
  // Called (from any thread) with each chunk of bytes finished, for progress lines.
  std::function<void(int64_t)> on_bytes;
};

// S3 allows at most 10,000 parts: grow the part size for very large files.
inline int64_t effective_part_size(int64_t file_size, int64_t part_size) {
  constexpr int64_t kMaxParts = 10000;
  while ((file_size + part_size - 1) / part_size > kMaxParts) part_size *= 2;
  return part_size;
}

}  // namespace kiln::storage
