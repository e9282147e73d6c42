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

class BlobVerifier {
 public:
  // Starts hashing at once on `threads` threads (0: one per core). `engine`
  // must outlive the verifier.
  explicit BlobVerifier(const Engine& engine, int threads = 0);
  ~BlobVerifier();  // stops early and joins when finish() was not called
  BlobVerifier(const BlobVerifier&) = delete;
  BlobVerifier& operator=(const BlobVerifier&) = delete;

  // Waits for every chunk; throws kiln::Error naming the blob and the byte
  // range that does not match engine.json.
  void finish();

 private:
  struct Piece {
    std::size_t rank;
    uint64_t offset, size, expected;
    bool whole_file;  // Checksum64 of a whole blob, else ChunkChecksum of a chunk
  };
  void run();

  const Engine& engine_;
  std::vector<Piece> pieces_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // guards error_
  std::string error_;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::engine
