// Models and engines in S3, as kiln build and kiln serve use them: a local
// copy of a prefix kept in the cache and reused while the objects are
// unchanged (same keys, sizes and ETags), and an engine published so that
// engine.json arrives last — a half-uploaded engine has no manifest and is not
// an engine.
#pragma once

#include <filesystem>

#include "storage/s3_client.h"
#include "storage/s3_uri.h"
#include "storage/transfer_options.h"
#include "storage/tree_copy.h"

namespace kiln::storage {

// The local directory holding s3://bucket/prefix/, downloaded into
// cache_root/s3/<bucket>/<prefix> unless an unchanged copy is already there.
// The directory appears (by rename) only when complete; concurrent callers on
// one copy take turns (flock on <dir>.lock).
std::filesystem::path fetch_prefix_cached(S3Client& client, const S3Uri& prefix,
                                          const std::filesystem::path& cache_root, const TransferOptions& options = {});

// Uploads `engine_dir` under `destination` as upload_tree does (engine.json
// last, and not at all when another file failed). Refuses a
// destination that already holds an engine unless `force`.
TransferSummary publish_engine(S3Client& client, const std::filesystem::path& engine_dir, const S3Uri& destination,
                               bool force, const TransferOptions& options = {});

}  // namespace kiln::storage
