// A piece of an engine blob put together from where its tensors were
// uploaded, for checking a backend's copy of the weights against the chunk
// checksums engine.json keeps of the file (engine::BlobChecksum).
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::runtime {

// The parts of the tensors that lie in the piece, each where upload() put it;
// the piece's other bytes (the padding between tensors) are zero.
struct UploadedSpan {
  uint64_t offset = 0;  // within the piece
  uint64_t nbytes = 0;
  const void* data = nullptr;
};
struct UploadedPiece {
  uint64_t size = 0;
  std::vector<UploadedSpan> spans;  // in order, not overlapping
};

// engine::ChunkChecksum's digest of each piece, its spans in host memory.
std::vector<uint64_t> checksum_in_host_memory(const std::vector<UploadedPiece>& pieces);

}  // namespace kiln::runtime
