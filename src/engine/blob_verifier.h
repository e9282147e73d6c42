// Verifies an engine's rank blobs against engine.json's chunk checksums as the
// weights load, so that a blob with flipped bytes is refused at load rather
// than served, without a second pass over gigabytes: a loader that copies the
// weights (to a GPU) calls cover() before it reads a tensor, which hashes the
// chunks under it on every core; the hashing takes the page faults and brings
// the bytes into the cache, and the copy that follows finds them there, so the
// weights cross the memory once, as they do unverified. A loader that uses the
// mapped blobs in place just calls finish(), which hashes everything at once.
// Engines without chunk checksums hash each blob whole in finish().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_reader.h"

namespace kiln::engine {

class BlobVerifier {
 public:
  // `engine` must outlive the verifier.
  explicit BlobVerifier(const Engine& engine);

  // Hashes, on the thread pool, the chunks of rank `rank` that overlap bytes
  // [begin, end) or lie within kLookahead chunks after them, unless already
  // hashed. Cheap when they are.
  void cover(std::size_t rank, uint64_t begin, uint64_t end);
  // Hashes what is left; throws kiln::Error naming the blob and the byte range
  // that does not match engine.json.
  void finish();

  // Chunks hashed beyond a tensor: the tensors that follow it in the blob are
  // usually read next, and a few chunks give the pool's threads work.
  static constexpr uint64_t kLookahead = 8;

 private:
  struct Piece {
    std::size_t rank;
    uint64_t offset, size, expected;
    bool whole_file;  // Checksum64 of a whole blob, else ChunkChecksum of a chunk
  };
  void hash(const std::vector<std::size_t>& pieces);

  const Engine& engine_;
  std::vector<Piece> pieces_;
  std::vector<std::size_t> first_piece_;   // per rank: its first piece (chunks are in order)
  std::vector<char> hashed_, mismatched_;  // per piece
};

}  // namespace kiln::engine
