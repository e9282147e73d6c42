#include "storage/model_store.h"

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "storage/multipart.h"

namespace kiln::storage {
namespace fs = std::filesystem;

namespace {

constexpr const char* kObjectList = ".kiln-s3-objects.json";

std::string as_prefix(const std::string& key) { return key.empty() || key.ends_with('/') ? key : key + "/"; }

nlohmann::json listing_json(const std::vector<ObjectInfo>& objects) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& o : objects) list.push_back({{"key", o.key}, {"size", o.size}, {"etag", o.etag}});
  return list;
}

// Whether `dir` holds exactly `objects` (by the recorded listing and the files' sizes).
bool cached_copy_is_current(const fs::path& dir, const std::string& prefix, const std::vector<ObjectInfo>& objects) {
  std::ifstream in(dir / kObjectList);
  if (!in) return false;
  const auto recorded = nlohmann::json::parse(in, nullptr, false);
  if (recorded != listing_json(objects)) return false;
  for (const auto& o : objects) {
    if (o.key.ends_with('/')) continue;
    const fs::path file = dir / o.key.substr(prefix.size());
    std::error_code ec;
    if (fs::file_size(file, ec) != static_cast<uintmax_t>(o.size) || ec) return false;
  }
  return true;
}

}  // namespace

fs::path fetch_prefix_cached(S3Client& client, const S3Uri& uri, const fs::path& cache_root,
                             const TransferOptions& options) {
  const std::string prefix = as_prefix(uri.key);
  const auto objects = client.list_objects(uri.bucket, prefix);
  if (objects.empty()) throw_error("s3://", uri.bucket, "/", prefix, " holds no objects");
  // The local path has no trailing '/', so the download can land in a sibling first.
  const std::string local = prefix.empty() ? "_root" : prefix.substr(0, prefix.size() - 1);
  const fs::path dir = cache_root / "s3" / uri.bucket / local;
  if (cached_copy_is_current(dir, prefix, objects)) {
    log_info("reusing the cached copy of s3://", uri.bucket, "/", prefix, " (objects unchanged): ", dir.string());
    return dir;
  }
  log_info("downloading s3://", uri.bucket, "/", prefix, " (", objects.size(), " objects) into ", dir.string());
  // Into a sibling first, then renamed: a failed download never looks like a copy.
  const fs::path partial = dir.parent_path() / (dir.filename().string() + ".partial-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial);
  try {
    download_tree(client, S3Uri{uri.bucket, prefix}, partial, options);
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
  std::ofstream(partial / kObjectList) << listing_json(objects).dump();
  fs::remove_all(dir, ec);
  fs::rename(partial, dir);
  return dir;
}

TransferSummary publish_engine(S3Client& client, const fs::path& engine_dir, const S3Uri& destination, bool force,
                               const TransferOptions& options) {
  const std::string prefix = as_prefix(destination.key);
  const S3Uri manifest{destination.bucket, prefix + "engine.json"};
  if (!force && client.head_object(manifest)) {
    throw_error("s3://", destination.bucket, "/", prefix, " already holds an engine; pass --force to replace it");
  }
  // engine.json steps aside while the rest uploads, then goes last.
  const fs::path held = engine_dir.parent_path() / (engine_dir.filename().string() + ".engine.json");
  fs::rename(engine_dir / "engine.json", held);
  TransferSummary summary;
  try {
    summary = upload_tree(client, engine_dir, S3Uri{destination.bucket, prefix}, options);
  } catch (...) {
    fs::rename(held, engine_dir / "engine.json");
    throw;
  }
  fs::rename(held, engine_dir / "engine.json");
  summary.bytes += upload_file(client, engine_dir / "engine.json", manifest, options);
  summary.files += 1;
  return summary;
}

}  // namespace kiln::storage
