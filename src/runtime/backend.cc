// The Backend operations with a portable default.
#include "runtime/backend.h"

#include "runtime/sampler.h"

namespace kiln::runtime {

std::vector<uint64_t> Backend::checksum_uploaded(const std::vector<UploadedPiece>& pieces) {
  return checksum_in_host_memory(pieces);
}

void Backend::sample(const float* logits, int64_t vocab, const std::vector<SampleRow>& choices, int32_t* tokens,
                     float* chosen_logits) {
  std::vector<float> host(static_cast<std::size_t>(vocab));
  for (std::size_t r = 0; r < choices.size(); ++r) {
    copy_to_host(logits + static_cast<int64_t>(r) * vocab, vocab, host.data());
    const SampleRow& c = choices[r];
    tokens[r] =
        c.params ? sample_token(host.data(), vocab, *c.params, c.history, c.uniform) : argmax(host.data(), vocab);
    chosen_logits[r] = host[static_cast<std::size_t>(tokens[r])];
  }
}

}  // namespace kiln::runtime
