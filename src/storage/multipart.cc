#include "storage/multipart.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "storage/parallel.h"

namespace kiln::storage {

namespace {
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw_error("cannot open ", path.string(), ": ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw_error("cannot stat ", path.string(), ": ", std::strerror(errno));
    size_ = st.st_size;
  }
  ~ReadOnlyFile() { ::close(fd_); }
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  int fd() const { return fd_; }
  int64_t size() const { return size_; }

 private:
  int fd_;
  int64_t size_ = 0;
};
}  // namespace

int64_t upload_file(S3Client& client, const std::filesystem::path& source, const S3Uri& destination,
                    const TransferOptions& options) {
  const ReadOnlyFile file(source);
  const int64_t size = file.size();
  if (size <= options.multipart_threshold) {
    client.put_object_from_fd(destination, file.fd(), 0, size);
    if (options.on_bytes) options.on_bytes(size);
    return size;
  }
  const int64_t part_size = effective_part_size(size, options.part_size);
  const int64_t parts = (size + part_size - 1) / part_size;
  const std::string upload_id = client.create_multipart_upload(destination);
  std::vector<std::string> etags(static_cast<std::size_t>(parts));
  try {
    parallel_tasks(parts, options.part_concurrency, [&](int64_t i) {
      const int64_t offset = i * part_size;
      const int64_t length = std::min(part_size, size - offset);
      etags[static_cast<std::size_t>(i)] =
          client.upload_part(destination, upload_id, static_cast<int>(i + 1), file.fd(), offset, length);
      if (options.on_bytes) options.on_bytes(length);
    });
    client.complete_multipart_upload(destination, upload_id, etags);
  } catch (...) {
    try {
      client.abort_multipart_upload(destination, upload_id);
    } catch (const std::exception& e) {
      log_warn("s3: could not abort multipart upload ", upload_id, " of ", destination.str(), ": ", e.what(),
               "; its parts stay stored (and billed) until a lifecycle rule or `aws s3api abort-multipart-upload "
               "--bucket ",
               destination.bucket, " --key ", destination.key, " --upload-id ", upload_id, "` removes them");
    }
    throw;
  }
  return size;
}

}  // namespace kiln::storage
