// Uploading one local file: a single PUT when small, else a multipart upload
// with parts in parallel, aborted when any part fails so no orphan parts bill.
#pragma once

#include <filesystem>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

// Returns the number of bytes uploaded.
int64_t upload_file(S3Client& client, const std::filesystem::path& source, const S3Uri& destination,
                    const TransferOptions& options);

}  // namespace kiln::storage
