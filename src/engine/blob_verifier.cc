#include "engine/blob_verifier.h"

#include <algorithm>

#include "core/error.h"
#include "engine/checksum.h"

namespace kiln::engine {

std::vector<BlobPiece> blob_pieces(const Manifest& m) {
  std::vector<BlobPiece> pieces;
  for (std::size_t r = 0; r < m.ranks.size(); ++r) {
    const RankBlob& blob = m.ranks[r];
    if (blob.chunk_checksums.empty()) {
      pieces.push_back({r, 0, blob.size, blob.checksum, true});
      continue;
    }
    for (std::size_t i = 0; i < blob.chunk_checksums.size(); ++i) {
      const uint64_t offset = i * blob.chunk_bytes;
      pieces.push_back({r, offset, std::min(blob.chunk_bytes, blob.size - offset), blob.chunk_checksums[i], false});
    }
  }
  return pieces;
}

std::string corrupted_piece_message(const Engine& engine, const BlobPiece& p) {
  return concat("engine blob ", (engine.dir() / engine.manifest().ranks[p.rank].file).string(),
                " does not match its checksum in engine.json (bytes ", p.offset, " to ", p.offset + p.size,
                "): the engine is corrupted; copy or build it again (--no-verify-weights skips this check)");
}

BlobVerifier::BlobVerifier(const Engine& engine, int threads)
    : BlobVerifier(engine, blob_pieces(engine.manifest()), threads) {}

BlobVerifier::BlobVerifier(const Engine& engine, std::vector<BlobPiece> pieces, int threads)
    : engine_(engine), pieces_(std::move(pieces)) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), pieces_.size()));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

BlobVerifier::~BlobVerifier() {
  stop_.store(true);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void BlobVerifier::run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    const std::size_t i = next_.fetch_add(1);
    if (i >= pieces_.size()) return;
    const BlobPiece& p = pieces_[i];
    const std::byte* bytes = engine_.blob(p.rank).data() + p.offset;
    uint64_t digest;
    if (p.whole_file) {  // an engine without chunk checksums
      Checksum64 sum;
      sum.update(bytes, p.size);
      digest = sum.digest();
    } else {
      ChunkChecksum sum;
      sum.update(bytes, p.size);
      digest = sum.digest();
    }
    if (digest != p.expected) {
      std::lock_guard lock(mutex_);
      if (error_.empty()) error_ = corrupted_piece_message(engine_, p);
      stop_.store(true);
    }
  }
}

void BlobVerifier::finish() {
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard lock(mutex_);
  if (!error_.empty()) throw Error(error_);
}

}  // namespace kiln::engine
