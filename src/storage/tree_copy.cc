#include "storage/tree_copy.h"

#include <algorithm>
#include <chrono>

#include "storage/multipart.h"
#include "storage/parallel.h"
#include "storage/ranged_download.h"

namespace kiln::storage {

namespace fs = std::filesystem;

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The local path for a key under a prefix, refusing keys that leave the directory.
fs::path local_path_for(const fs::path& root, const std::string& relative_key) {
  const fs::path rel = fs::path(relative_key).lexically_normal();
  if (rel.empty() || rel.is_absolute() || *rel.begin() == "..") {
    throw_error("s3: refusing to download key '", relative_key, "': it would be written outside ", root.string());
  }
  return root / rel;
}
}  // namespace

TransferSummary upload_tree(S3Client& client, const fs::path& source, const S3Uri& destination,
                            const TransferOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!fs::is_directory(source)) throw_error("s3: ", source.string(), " is not a directory");
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(source)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  // Largest first, so one big file does not start last and run alone.
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return fs::file_size(a) > fs::file_size(b); });
  std::atomic<int64_t> bytes{0};
  parallel_tasks(static_cast<int64_t>(files.size()), options.file_concurrency, [&](int64_t i) {
    const fs::path& file = files[static_cast<std::size_t>(i)];
    const std::string rel = file.lexically_relative(source).generic_string();
    bytes += upload_file(client, file, destination.child(rel), options);
  });
  return TransferSummary{static_cast<int64_t>(files.size()), bytes.load(), seconds_since(start)};
}

TransferSummary download_tree(S3Client& client, const S3Uri& source, const fs::path& destination,
                              const TransferOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const std::string prefix = source.prefix();
  std::vector<ObjectInfo> objects = client.list_objects(source.bucket, prefix);
  std::erase_if(objects, [](const ObjectInfo& o) { return o.key.ends_with('/'); });
  std::sort(objects.begin(), objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.size > b.size; });
  std::vector<fs::path> targets;
  for (const ObjectInfo& o : objects) targets.push_back(local_path_for(destination, o.key.substr(prefix.size())));
  fs::create_directories(destination);
  std::atomic<int64_t> bytes{0};
  parallel_tasks(static_cast<int64_t>(objects.size()), options.file_concurrency, [&](int64_t i) {
    const ObjectInfo& o = objects[static_cast<std::size_t>(i)];
    bytes += download_file(client, S3Uri{source.bucket, o.key}, targets[static_cast<std::size_t>(i)], options, o.size);
  });
  return TransferSummary{static_cast<int64_t>(objects.size()), bytes.load(), seconds_since(start)};
}

}  // namespace kiln::storage
