#include "storage/tree_copy.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <vector>

#include "core/log.h"
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

bool is_manifest(const std::string& relative) { return fs::path(relative).filename() == kEngineManifest; }

// One file of a tree copy: its relative path, its size when known, and (a
// download's) the ETag the listing gave, which every range must still match.
struct Item {
  std::string relative;
  int64_t size = 0;
  std::string etag;
};

// Copies `items` with `copy_one`, every manifest after all the others; a
// failure stops the copy before any manifest and is rethrown naming the file.
// `direction` ("upload", "download") and `where` (the destination) word the error.
int64_t copy_manifest_last(std::vector<Item> items, int concurrency, const std::string& direction,
                           const std::string& where, const std::function<int64_t(const Item&)>& copy_one) {
  // Largest first, so one big file does not start last and run alone.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.size > b.size; });
  std::vector<Item> blobs, manifests;
  for (auto& item : items) (is_manifest(item.relative) ? manifests : blobs).push_back(std::move(item));
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> done{0};
  const auto run = [&](const std::vector<Item>& batch) {
    parallel_tasks(static_cast<int64_t>(batch.size()), concurrency, [&](int64_t i) {
      const Item& item = batch[static_cast<std::size_t>(i)];
      try {
        bytes += copy_one(item);
        ++done;
      } catch (const std::exception& e) {
        throw Error(concat(direction, " of ", item.relative, " failed: ", e.what()));
      }
    });
  };
  try {
    run(blobs);
  } catch (const Error& e) {
    const std::string held = manifests.empty()
                                 ? std::string()
                                 : concat("; ", manifests.size() == 1 ? manifests[0].relative : "the engine.json files",
                                          " not copied, so ", where, " holds no complete engine");
    throw Error(concat(e.what(), " (", done.load(), " of ", items.size(), " files copied", held, ")"));
  }
  try {
    run(manifests);
  } catch (const Error& e) {
    throw Error(concat(e.what(), " (", done.load(), " of ", items.size(), " files copied)"));
  }
  return bytes.load();
}
}  // namespace

TransferSummary upload_tree(S3Client& client, const fs::path& source, const S3Uri& destination,
                            const TransferOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!fs::is_directory(source)) throw_error("s3: ", source.string(), " is not a directory");
  std::vector<Item> items;
  for (const auto& entry : fs::recursive_directory_iterator(source)) {
    if (!entry.is_regular_file()) continue;
    items.push_back(
        Item{entry.path().lexically_relative(source).generic_string(), static_cast<int64_t>(entry.file_size()), {}});
  }
  // An old manifest at the destination goes before any new blob arrives.
  for (const Item& item : items) {
    if (!is_manifest(item.relative)) continue;
    const S3Uri target = destination.child(item.relative);
    try {
      if (client.head_object(target)) {
        log_info("s3: deleting the old ", target.str(), " before uploading the files it would describe");
        client.delete_object(target);
      }
    } catch (const S3Error& e) {
      if (e.status() != 403) throw;  // a put-only role may not read: the upload then replaces it last
      log_warn("s3: cannot check for an old ", target.str(), ": ", e.what());
    }
  }
  const int64_t bytes =
      copy_manifest_last(items, options.file_concurrency, "upload", destination.str(), [&](const Item& item) {
        return upload_file(client, source / item.relative, destination.child(item.relative), options);
      });
  return TransferSummary{static_cast<int64_t>(items.size()), bytes, seconds_since(start)};
}

TransferSummary download_tree(S3Client& client, const S3Uri& source, const fs::path& destination,
                              const TransferOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const std::string prefix = source.prefix();
  std::vector<ObjectInfo> objects = client.list_objects(source.bucket, prefix);
  std::erase_if(objects, [](const ObjectInfo& o) { return o.key.ends_with('/'); });
  std::vector<Item> items;
  std::set<fs::path> directories{destination};
  for (const ObjectInfo& o : objects) {
    const std::string relative = o.key.substr(prefix.size());
    directories.insert(local_path_for(destination, relative).parent_path());
    items.push_back(Item{relative, o.size, o.etag});
  }
  fs::create_directories(destination);
  for (const fs::path& dir : directories) remove_stale_partials(dir);
  // An old local manifest goes before any new file lands beside it.
  for (const Item& item : items) {
    if (!is_manifest(item.relative)) continue;
    std::error_code ec;
    if (fs::remove(local_path_for(destination, item.relative), ec)) {
      log_info("removed the old ", (destination / item.relative).string(),
               " before downloading the files it would describe");
    }
  }
  const int64_t bytes =
      copy_manifest_last(items, options.file_concurrency, "download", destination.string(), [&](const Item& item) {
        return download_file(client, S3Uri{source.bucket, prefix + item.relative},
                             local_path_for(destination, item.relative), options, item.size, item.etag);
      });
  return TransferSummary{static_cast<int64_t>(items.size()), bytes, seconds_since(start)};
}

}  // namespace kiln::storage
