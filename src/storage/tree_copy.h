// Copying a directory tree to an S3 prefix and back, files in parallel,
// relative paths preserved (dir/a/b.bin <-> s3://bucket/prefix/a/b.bin).
//
// engine.json, the file that makes a directory an engine, goes last: every
// engine.json in the tree is copied only after every other file arrived, and
// not at all when one failed (the error names the file and says engine.json
// was held back). An engine.json already at the destination of one being
// copied is deleted first, so an interrupted copy over an old engine does not
// leave the old manifest over new blobs either. A copied engine is whole or
// has no manifest, locally and in S3.
#pragma once

#include <filesystem>
#include <string>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

struct TransferSummary {
  int64_t files = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

// The name of the file that marks a complete engine.
inline constexpr const char* kEngineManifest = "engine.json";

TransferSummary upload_tree(S3Client& client, const std::filesystem::path& source, const S3Uri& destination,
                            const TransferOptions& options);
// Keys ending in '/' (console "folders") are skipped; keys that would escape
// the destination directory ("..") are refused. Temporary files of an earlier,
// killed download in the directories written to are removed.
TransferSummary download_tree(S3Client& client, const S3Uri& source, const std::filesystem::path& destination,
                              const TransferOptions& options);

}  // namespace kiln::storage
