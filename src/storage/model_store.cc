#include "storage/model_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "storage/multipart.h"
#include "storage/parallel.h"
#include "storage/ranged_download.h"

namespace kiln::storage {
namespace fs = std::filesystem;

namespace {

constexpr const char* kObjectList = ".kiln-s3-objects.json";

// Hex MD5 of a file's bytes, as S3 reports a single-part object's ETag.
std::string md5_hex(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

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

// An exclusive flock on a file beside the cached copy, held while it downloads.
class CacheLock {
 public:
  explicit CacheLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw_error("cannot create ", path.string(), ": ", std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      log_info("waiting for another process downloading into ", path.parent_path().string());
      if (::flock(fd_, LOCK_EX) != 0) throw_error("cannot lock ", path.string(), ": ", std::strerror(errno));
    }
  }
  ~CacheLock() { ::close(fd_); }
  CacheLock(const CacheLock&) = delete;
  CacheLock& operator=(const CacheLock&) = delete;

 private:
  int fd_;
};

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
  // One download at a time per copy: two processes starting on the same
  // model (workers of one host) must not fill and rename one .partial together.
  fs::create_directories(dir.parent_path());
  const CacheLock lock(dir.parent_path() / (dir.filename().string() + ".lock"));
  if (cached_copy_is_current(dir, prefix, objects)) {
    log_info("reusing the copy of s3://", uri.bucket, "/", prefix, " another process just downloaded: ", dir.string());
    return dir;
  }
  log_info("downloading s3://", uri.bucket, "/", prefix, " (", objects.size(), " objects) into ", dir.string());
  // Into a sibling first, renamed when complete: a failed download never looks
  // like a copy. The sibling survives a failure, so the next attempt resumes:
  // files already there with their size and ETag recorded are kept.
  const fs::path partial = dir.parent_path() / (dir.filename().string() + ".partial");
  fs::create_directories(partial);
  std::vector<const ObjectInfo*> files;
  std::set<fs::path> directories{partial};
  for (const auto& o : objects) {
    if (o.key.ends_with('/')) continue;
    files.push_back(&o);
    directories.insert((partial / o.key.substr(prefix.size())).parent_path());
  }
  for (const fs::path& d : directories) remove_stale_partials(d);
  parallel_tasks(static_cast<int64_t>(files.size()), options.file_concurrency, [&](int64_t i) {
    const ObjectInfo& o = *files[static_cast<std::size_t>(i)];
    const std::string relative = o.key.substr(prefix.size());
    if (relative.find("..") != std::string::npos) throw_error("refusing S3 key ", o.key, ": it leaves the directory");
    const fs::path dest = partial / relative;
    const fs::path etag_file = fs::path(dest.string() + ".kiln-etag");
    std::error_code size_error;
    if (fs::file_size(dest, size_error) == static_cast<uintmax_t>(o.size) && !size_error) {
      std::ifstream recorded(etag_file);
      std::string etag;
      if (std::getline(recorded, etag) && etag == o.etag) return;  // finished by an earlier attempt
    }
    fs::create_directories(dest.parent_path());
    download_file(client, S3Uri{uri.bucket, o.key}, dest, options, o.size, o.etag);
    // A single-part object's ETag is the MD5 of its bytes: check it.
    if (o.etag.size() == 32 && o.etag.find('-') == std::string::npos) {
      const std::string md5 = md5_hex(dest);
      if (md5 != o.etag) {
        fs::remove(dest);
        throw_error("s3://", uri.bucket, "/", o.key, " arrived corrupted: MD5 ", md5, ", ETag ", o.etag);
      }
    }
    std::ofstream(etag_file) << o.etag << '\n';
  });
  std::error_code ec;
  for (const auto* o : files)
    fs::remove(fs::path((partial / o->key.substr(prefix.size())).string() + ".kiln-etag"), ec);
  {
    std::ofstream list(partial / kObjectList);
    list << listing_json(objects).dump();
    list.close();
    if (!list) throw_error("cannot write ", (partial / kObjectList).string());
  }
  // Renamed only when every object is there with its size: the directory
  // `dir` is a complete copy or does not exist.
  if (!cached_copy_is_current(partial, prefix, objects)) {
    throw_error("the download of s3://", uri.bucket, "/", prefix, " into ", partial.string(), " is incomplete");
  }
  fs::remove_all(dir, ec);
  fs::rename(partial, dir);
  return dir;
}

TransferSummary publish_engine(S3Client& client, const fs::path& engine_dir, const S3Uri& destination, bool force,
                               const TransferOptions& options) {
  const std::string prefix = as_prefix(destination.key);
  const S3Uri manifest{destination.bucket, prefix + kEngineManifest};
  if (!force && client.head_object(manifest)) {
    throw_error("s3://", destination.bucket, "/", prefix, " already holds an engine; pass --force to replace it");
  }
  // upload_tree sends engine.json last, and only when everything else arrived.
  return upload_tree(client, engine_dir, S3Uri{destination.bucket, prefix}, options);
}

}  // namespace kiln::storage
