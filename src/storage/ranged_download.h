// Downloading one object to a local file: parallel ranged GETs written in
// place (pwrite) into a temporary file, sizes verified, then renamed, so a
// file at the destination path is always complete. The temporary file is
// named DEST.kiln-partial-PID-RANDOM: one left by a killed process is found
// (its PID is gone) and removed by remove_stale_partials.
#pragma once

#include <filesystem>
#include <optional>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

// `known_size` (from a listing, with the listing's `etag`) saves the HEAD
// request. Every ranged GET asks for that ETag (If-Match), so an object
// overwritten mid-download fails the download instead of splicing two
// versions' bytes into one file. Returns the bytes written.
int64_t download_file(S3Client& client, const S3Uri& source, const std::filesystem::path& destination,
                      const TransferOptions& options, std::optional<int64_t> known_size = std::nullopt,
                      const std::string& etag = {});

// Removes the temporary files in `dir` (not below it) of downloads whose
// process no longer runs. Returns how many it removed.
int remove_stale_partials(const std::filesystem::path& dir);

}  // namespace kiln::storage
