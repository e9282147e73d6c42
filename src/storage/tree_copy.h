// Copying a directory tree to an S3 prefix and back, files in parallel,
// relative paths preserved (dir/a/b.bin <-> s3://bucket/prefix/a/b.bin).
#pragma once

#include <filesystem>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

struct TransferSummary {
  int64_t files = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

TransferSummary upload_tree(S3Client& client, const std::filesystem::path& source, const S3Uri& destination,
                            const TransferOptions& options);
// Keys ending in '/' (console "folders") are skipped; keys that would escape
// the destination directory ("..") are refused.
TransferSummary download_tree(S3Client& client, const S3Uri& source, const std::filesystem::path& destination,
                              const TransferOptions& options);

}  // namespace kiln::storage
