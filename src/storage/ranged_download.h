// Downloading one object to a local file: parallel ranged GETs written in
// place (pwrite) into a temporary file, sizes verified, then renamed, so a
// file at the destination path is always complete.
#pragma once

#include <filesystem>
#include <optional>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

// `known_size` (from a listing) saves the HEAD request. Returns the bytes written.
int64_t download_file(S3Client& client, const S3Uri& source, const std::filesystem::path& destination,
                      const TransferOptions& options, std::optional<int64_t> known_size = std::nullopt);

}  // namespace kiln::storage
