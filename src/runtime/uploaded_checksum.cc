#include "runtime/uploaded_checksum.h"

#include <algorithm>

#include "engine/checksum.h"

namespace kiln::runtime {

std::vector<uint64_t> checksum_in_host_memory(const std::vector<UploadedPiece>& pieces) {
  static constexpr unsigned char kZeros[4096] = {};
  auto zeros = [](engine::ChunkChecksum& sum, uint64_t n) {
    for (; n > 0; n -= std::min<uint64_t>(n, sizeof kZeros)) sum.update(kZeros, std::min<uint64_t>(n, sizeof kZeros));
  };
  std::vector<uint64_t> digests;
  digests.reserve(pieces.size());
  for (const UploadedPiece& piece : pieces) {
    engine::ChunkChecksum sum;
    uint64_t at = 0;
    for (const UploadedSpan& span : piece.spans) {
      zeros(sum, span.offset - at);
      sum.update(span.data, span.nbytes);
      at = span.offset + span.nbytes;
    }
    zeros(sum, piece.size - at);
    digests.push_back(sum.digest());
  }
  return digests;
}

}  // namespace kiln::runtime
