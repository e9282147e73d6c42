// Verifies the weights a backend loads against engine.json's checksums, so
// that a blob with flipped bytes is refused at load rather than served. How
// depends on where the backend keeps its weights:
// - a backend that copies them (to a GPU) hashes its own copy after the last
//   upload (Backend::checksum_uploaded: each chunk of the blob put together
//   from the tensors in it, zeros between them, on the device at its memory's
//   speed). That checks the bytes the kernels will read, and reads nothing
//   twice on the host: hashing the file beside the copy cost 25% of a 7B
//   load (docs/cuda.md), this about 1%.
// - a backend that uses the mapped engine in place (the CPU) has nothing to
//   overlap: the file is hashed on every core while the tensors are taken.
// Chunks holding a tensor the load did not upload, and engines that list no
// chunk checksums, are hashed from the file.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/blob_verifier.h"
#include "engine/engine_reader.h"
#include "runtime/backend.h"

namespace kiln::runtime {

// How the chunks of an engine's blobs are checked once the tensors are where
// `placed(rank, tensor)` says (null: not uploaded).
struct UploadedCheckPlan {
  std::vector<engine::BlobPiece> uploaded;   // hashed by the backend ...
  std::vector<UploadedPiece> layouts;        // ... from these bytes
  std::vector<engine::BlobPiece> from_file;  // hashed from the mapped blob
};
UploadedCheckPlan plan_uploaded_check(
    const engine::Manifest& manifest,
    const std::function<const void*(std::size_t rank, const engine::TensorEntry& tensor)>& placed);

class WeightVerifier {
 public:
  // Does nothing unless engine.verify_weights() and `verify` (false: another
  // loader of the same engine verifies it, as tensor-parallel rank 0 does for
  // the ranks beside it); where the backend uses the mapped engine in place,
  // starts hashing the file at once. `engine` and `backend` must outlive the
  // verifier.
  WeightVerifier(const engine::Engine& engine, Backend& backend, bool verify = true);

  // Records where upload() put tensor `name` of rank `rank`.
  void uploaded(int rank, const std::string& name, const Weight& weight);
  // After the last upload: checks every chunk; throws kiln::Error naming the
  // blob and the byte range that does not match engine.json.
  void finish();

 private:
  const engine::Engine& engine_;
  Backend& backend_;
  bool check_uploads_ = false;
  std::optional<engine::BlobVerifier> file_;
  std::map<std::pair<std::size_t, std::string>, const void*> placed_;
};

}  // namespace kiln::runtime
