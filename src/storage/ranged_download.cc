#include "storage/ranged_download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "storage/parallel.h"

namespace kiln::storage {

namespace {
// The temporary sibling a download is written to; removed unless committed.
class PartialFile {
 public:
  explicit PartialFile(const std::filesystem::path& destination) : destination_(destination) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    path_ = destination;
    path_ += concat(".kiln-partial-", std::hex, rng());
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
                      const TransferOptions& options, std::optional<int64_t> known_size) {
  if (!known_size) {
    const std::optional<ObjectInfo> info = client.head_object(source);
    if (!info) {
      // HEAD has no body to say whether the bucket or the key is missing; a
      // one-byte GET fails with S3's own NoSuchBucket / NoSuchKey message.
      client.get_object(source);
      throw_error("s3: ", source.str(), " does not exist");
    }
    known_size = info->size;
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
      client.get_object_range_to_fd(source, offset, length, partial.fd(), offset);
      if (options.on_bytes) options.on_bytes(length);
    });
  }
  partial.commit(size);
  return size;
}

}  // namespace kiln::storage
