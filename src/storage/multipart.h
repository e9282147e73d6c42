// Uploading one local file: a single PUT when small, else a multipart upload
// with parts in parallel. Each request is retried on its own (a failed part is
// sent again, the parts already stored are not); when a part fails for good the
// upload is aborted, so no orphan parts bill.
#pragma once

#include <filesystem>

#include "storage/s3_client.h"
#include "storage/transfer_options.h"

namespace kiln::storage {

// Returns the number of bytes uploaded.
int64_t upload_file(S3Client& client, const std::filesystem::path& source, const S3Uri& destination,
                    const TransferOptions& options);

}  // namespace kiln::storage
