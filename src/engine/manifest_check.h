// Validates an engine.json before anything is allocated from it. The runtime
// sizes buffers, loops and pointer arithmetic from the manifest's fields, so a
// hand-edited or corrupted manifest must be refused here, with the field at
// fault named, rather than corrupt memory later: the ModelSpec is checked on
// its own (core/model_spec_check.h), the limits and the tensor-parallel degree
// against what the format allows, and every rank's tensor table against the
// shapes and dtypes the spec implies, with offsets and sizes checked without
// overflow against the blob's size.
#pragma once

#include <string_view>

#include "engine/manifest.h"

namespace kiln::engine {

// What the format allows beyond the ModelSpec's own bounds.
struct ManifestBounds {
  static constexpr int kMaxTensorParallel = 64;
  static constexpr int64_t kMaxBatchSize = int64_t{1} << 16;
  static constexpr int64_t kMaxSequenceLen = int64_t{1} << 24;  // input, output and tokens per step
};

// Throws kiln::Error "<where>: ..." naming the first field or tensor at fault.
// The container: the rank table matches tensor_parallel, blob names are
// rankN.bin, every tensor lies inside its blob (checked without overflow),
// aligned, with nbytes equal to its shape and dtype, listed once; chunk
// checksums cover the blob. What any reader of the format needs.
void validate_container(const Manifest& manifest, std::string_view where);
// The model: the ModelSpec, the limits, the weight dtype, and every rank's
// tensor table against the shapes and dtypes the spec implies. What running
// the engine needs, on top of the container.
void validate_model(const Manifest& manifest, std::string_view where);
// Both.
void validate_manifest(const Manifest& manifest, std::string_view where);

}  // namespace kiln::engine
