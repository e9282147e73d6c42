// Verifies an engine's rank blobs against engine.json's checksums on
// background threads while the caller reads them (the runtime uploading its
// weights), so that a blob with flipped bytes is refused at load rather than
// served, without a second sequential pass over gigabytes: the chunks of every
// blob (BlobChecksum) are hashed in parallel, each read from the same page
// cache the upload reads. Engines without chunk checksums hash each blob whole.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_reader.h"

namespace kiln::engine {

// One piece of a rank blob and the checksum engine.json keeps of it.
struct BlobPiece {
  std::size_t rank = 0;
  uint64_t offset = 0, size = 0, expected = 0;
  bool whole_file = false;  // Checksum64 of a whole blob, else ChunkChecksum of a chunk
};

// The pieces engine.json checks: each blob's chunks, or the whole blob in
// engines that list no chunks.
std::vector<BlobPiece> blob_pieces(const Manifest& manifest);
// What a loader says of a piece whose bytes do not match.
std::string corrupted_piece_message(const Engine& engine, const BlobPiece& piece);

class BlobVerifier {
 public:
  // Starts hashing every piece, or only `pieces`, at once on `threads` threads
  // (0: one per core). `engine` must outlive the verifier.
  explicit BlobVerifier(const Engine& engine, int threads = 0);
  BlobVerifier(const Engine& engine, std::vector<BlobPiece> pieces, int threads);
  ~BlobVerifier();  // stops early and joins when finish() was not called
  BlobVerifier(const BlobVerifier&) = delete;
  BlobVerifier& operator=(const BlobVerifier&) = delete;

  // Waits for every chunk; throws kiln::Error naming the blob and the byte
  // range that does not match engine.json.
  void finish();

 private:
  void run();

  const Engine& engine_;
  std::vector<BlobPiece> pieces_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // guards error_
  std::string error_;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::engine
