#include "storage/ranged_download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "core/log.h"
#include "core/process.h"
#include "storage/parallel.h"

namespace kiln::storage {

namespace {
constexpr const char* kPartialMarker = ".kiln-partial-";

// The PID in NAME.kiln-partial-PID-RANDOM, or 0 when `name` is not such a file.
pid_t partial_owner(const std::string& name) {
  const std::size_t at = name.rfind(kPartialMarker);
  if (at == std::string::npos) return 0;
  const std::size_t begin = at + std::strlen(kPartialMarker);
  const std::size_t dash = name.find('-', begin);
  if (dash == std::string::npos || dash == begin || dash - begin > 9) return 0;
  pid_t pid = 0;
  for (std::size_t i = begin; i < dash; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid;
}

// The temporary sibling a download is written to; removed unless committed.
class PartialFile {
 public:
  explicit PartialFile(const std::filesystem::path& destination) : destination_(destination) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    path_ = destination;
    path_ += concat(kPartialMarker, ::getpid(), "-", std::hex, rng());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_error("cannot create ", path_.string(), ": ", std::strerror(errno));
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  int fd() const { return fd_; }

  void commit(int64_t expected_size) {
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || st.st_size != expected_size) {
      throw_error("download of ", destination_.string(), " has ", st.st_size, " bytes, expected ", expected_size);
    }
    if (::close(fd_) != 0) throw_error("cannot write ", path_.string(), ": ", std::strerror(errno));
    fd_ = -1;
    if (::rename(path_.c_str(), destination_.c_str()) != 0) {
      throw_error("cannot rename ", path_.string(), " to ", destination_.string(), ": ", std::strerror(errno));
    }
    committed_ = true;
  }

 private:
  std::filesystem::path destination_;
  std::filesystem::path path_;
  int fd_ = -1;
  bool committed_ = false;
};
}  // namespace

int64_t download_file(S3Client& client, const S3Uri& source, const std::filesystem::path& destination,
                      const TransferOptions& options, std::optional<int64_t> known_size, const std::string& etag) {
  std::string expected = etag;
  if (!known_size) {
    const std::optional<ObjectInfo> info = client.head_object(source);
    if (!info) {
      // HEAD has no body to say whether the bucket or the key is missing; a
      // one-byte GET fails with S3's own NoSuchBucket / NoSuchKey message.
      client.get_object(source);
      throw_error("s3: ", source.str(), " does not exist");
    }
    known_size = info->size;
    expected = info->etag;
  }
  const int64_t size = *known_size;
  if (destination.has_parent_path()) std::filesystem::create_directories(destination.parent_path());
  PartialFile partial(destination);
  if (size > 0) {
    const int64_t chunk = size > options.multipart_threshold ? effective_part_size(size, options.part_size) : size;
    const int64_t chunks = (size + chunk - 1) / chunk;
    // Sizing the file first lets every range land in place, in any order.
    if (::ftruncate(partial.fd(), size) != 0) {
      throw_error("cannot size ", destination.string(), " to ", size, " bytes: ", std::strerror(errno));
    }
    parallel_tasks(chunks, options.part_concurrency, [&](int64_t i) {
      const int64_t offset = i * chunk;
      const int64_t length = std::min(chunk, size - offset);
      client.get_object_range_to_fd(source, offset, length, partial.fd(), offset, expected);
      if (options.on_bytes) options.on_bytes(length);
    });
  }
  partial.commit(size);
  return size;
}

int remove_stale_partials(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    const pid_t pid = partial_owner(it->path().filename().string());
    if (pid <= 0 || pid == ::getpid() || !process_gone(pid)) continue;
    std::error_code remove_error;
    if (std::filesystem::remove(it->path(), remove_error)) {
      log_info("removed ", it->path().string(), ", left by an interrupted download (process ", pid, " is gone)");
      ++removed;
    }
  }
  return removed;
}

}  // namespace kiln::storage
