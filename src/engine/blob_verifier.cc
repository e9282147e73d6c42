#include "engine/blob_verifier.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/checksum.h"

namespace kiln::engine {

BlobVerifier::BlobVerifier(const Engine& engine) : engine_(engine) {
  const Manifest& m = engine.manifest();
  for (std::size_t r = 0; r < m.ranks.size(); ++r) {
    const RankBlob& blob = m.ranks[r];
    first_piece_.push_back(pieces_.size());
    if (blob.chunk_checksums.empty()) {
      pieces_.push_back({r, 0, blob.size, blob.checksum, true});
      continue;
    }
    for (std::size_t i = 0; i < blob.chunk_checksums.size(); ++i) {
      const uint64_t offset = i * blob.chunk_bytes;
      pieces_.push_back({r, offset, std::min(blob.chunk_bytes, blob.size - offset), blob.chunk_checksums[i], false});
    }
  }
  first_piece_.push_back(pieces_.size());
  hashed_.assign(pieces_.size(), 0);
  mismatched_.assign(pieces_.size(), 0);
}

void BlobVerifier::cover(std::size_t rank, uint64_t begin, uint64_t end) {
  const RankBlob& blob = engine_.manifest().ranks.at(rank);
  if (blob.chunk_checksums.empty() || end <= begin) return;
  const uint64_t first = begin / blob.chunk_bytes;
  const uint64_t last = std::min<uint64_t>((end - 1) / blob.chunk_bytes + kLookahead, blob.chunk_checksums.size() - 1);
  std::vector<std::size_t> todo;
  for (uint64_t c = first; c <= last; ++c) {
    const std::size_t piece = first_piece_[rank] + c;
    if (!hashed_[piece]) todo.push_back(piece);
  }
  hash(todo);
}

void BlobVerifier::hash(const std::vector<std::size_t>& todo) {
  if (todo.empty()) return;
  ThreadPool::global().parallel_for(static_cast<int64_t>(todo.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const std::size_t i = todo[static_cast<std::size_t>(t)];
      const Piece& p = pieces_[i];
      const std::byte* bytes = engine_.blob(p.rank).data() + p.offset;
      uint64_t digest;
      if (p.whole_file) {
        Checksum64 sum;
        sum.update(bytes, p.size);
        digest = sum.digest();
      } else {
        ChunkChecksum sum;
        sum.update(bytes, p.size);
        digest = sum.digest();
      }
      mismatched_[i] = digest != p.expected;
      hashed_[i] = 1;
    }
  });
}

void BlobVerifier::finish() {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    if (!hashed_[i]) todo.push_back(i);
  }
  hash(todo);
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    if (!mismatched_[i]) continue;
    const Piece& p = pieces_[i];
    throw_error("engine blob ", (engine_.dir() / engine_.manifest().ranks[p.rank].file).string(),
                " does not match its checksum in engine.json (bytes ", p.offset, " to ", p.offset + p.size,
                "): the engine is damaged; copy or build it again (--no-verify-weights skips this check)");
  }
}

}  // namespace kiln::engine
