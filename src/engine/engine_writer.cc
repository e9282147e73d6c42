#include "engine/engine_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "engine/stale_staging.h"

namespace kiln::engine {
namespace fs = std::filesystem;

namespace {

// Once this much more of a blob is hashed, its writeback to disk is started,
// so that the final fsync finds most of the engine already on disk.
constexpr uint64_t kWritebackBytes = 64ull << 20;

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

EngineWriter::EngineWriter(fs::path output, int ranks, bool force, bool map_for_writing)
    : output_(std::move(output)), force_(force), map_for_writing_(map_for_writing) {
  if (output_.filename().empty()) output_ = output_.parent_path();
  if (fs::exists(output_) && !force_) {
    throw_error("output ", output_.string(), " already exists; pass --force to replace it");
  }
  const fs::path parent = output_.has_parent_path() ? output_.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  for (const fs::path& stale : remove_stale_staging(output_)) {
    log_info("removed ", stale.string(), ", left by a build that was killed");
  }
  tmp_ = staging_path(output_, "tmp", ::getpid());
  fs::remove_all(tmp_, ec);
  if (!fs::create_directory(tmp_, ec)) throw_error("cannot create ", tmp_.string(), ": ", ec.message());
  for (int r = 0; r < ranks; ++r) {
    auto file = std::make_unique<RankFile>();
    file->blob.file = concat("rank", r, ".bin");
    file->path = tmp_ / file->blob.file;
    file->fd = ::open(file->path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (file->fd < 0) throw_error("cannot write ", file->path.string(), ": ", std::strerror(errno));
    ranks_.push_back(std::move(file));
  }
}

EngineWriter::~EngineWriter() {
  stop_hashing();
  for (auto& f : ranks_) {
    if (f->map != nullptr) ::munmap(f->map, f->blob.size);
    if (f->fd >= 0) ::close(f->fd);
  }
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void EngineWriter::stop_hashing() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  progress_.notify_all();
  for (auto& f : ranks_) {
    if (f->hasher.joinable()) f->hasher.join();
  }
}

void EngineWriter::write_all(RankFile& f, uint64_t offset, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t done = ::pwrite(f.fd, p, std::min<std::size_t>(n, 1ull << 30), static_cast<off_t>(offset));
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      throw_error("writing ", f.path.string(), " failed", done < 0 ? concat(": ", std::strerror(errno)) : "");
    }
    p += done;
    offset += static_cast<uint64_t>(done);
    n -= static_cast<std::size_t>(done);
  }
}

void EngineWriter::add_tensor(int rank, const std::string& name, DType dtype, const Shape& shape,
                              const std::string& layout, const void* data, std::size_t nbytes) {
  RankFile& f = *ranks_.at(static_cast<std::size_t>(rank));
  if (allocated_ || f.frontier != f.blob.size) {
    throw_error("EngineWriter: add_tensor('", name, "') after reserve_tensor or allocate");
  }
  static const char kZeros[kTensorAlignment] = {};
  const uint64_t pad = (kTensorAlignment - f.blob.size % kTensorAlignment) % kTensorAlignment;
  write_all(f, f.blob.size, kZeros, pad);
  f.checksum.update(kZeros, pad);
  f.blob.size += pad;
  f.blob.tensors.push_back(TensorEntry{name, dtype, shape, layout, f.blob.size, nbytes});
  write_all(f, f.blob.size, data, nbytes);
  f.checksum.update(data, nbytes);
  f.blob.size += nbytes;
  f.hashed = f.frontier = f.blob.size;
}

uint64_t EngineWriter::reserve_tensor(int rank, const std::string& name, DType dtype, const Shape& shape,
                                      const std::string& layout, uint64_t nbytes) {
  RankFile& f = *ranks_.at(static_cast<std::size_t>(rank));
  if (allocated_) throw_error("EngineWriter: reserve_tensor('", name, "') after allocate");
  const uint64_t pad = (kTensorAlignment - f.blob.size % kTensorAlignment) % kTensorAlignment;
  // Padding is never written: the blob is sized with zeros, and counts as written.
  if (pad > 0) f.landed.emplace(f.blob.size, f.blob.size + pad);
  f.blob.size += pad;
  f.blob.tensors.push_back(TensorEntry{name, dtype, shape, layout, f.blob.size, nbytes});
  const uint64_t offset = f.blob.size;
  f.blob.size += nbytes;
  return offset;
}

void EngineWriter::allocate() {
  if (allocated_) return;
  // A disk too small for the engine fails here, before any work, with a clear
  // message (write and fsync errors are still checked: this is only a forecast).
  uint64_t needed = 0;
  for (const auto& f : ranks_) needed += f->blob.size - f->frontier;
  struct statvfs fs_stat {};
  if (::statvfs(tmp_.c_str(), &fs_stat) == 0 && fs_stat.f_blocks > 0) {  // some filesystems report no sizes
    const uint64_t available = static_cast<uint64_t>(fs_stat.f_bavail) * fs_stat.f_frsize;
    if (available < needed) {
      throw_error("not enough disk space for the engine in ", tmp_.parent_path().string(), ": it needs ", needed,
                  " bytes, ", available, " are available");
    }
  }
  for (auto& file : ranks_) {
    RankFile& f = *file;
    if (::ftruncate(f.fd, static_cast<off_t>(f.blob.size)) != 0) {
      throw_error("cannot size ", f.path.string(), " to ", f.blob.size, " bytes: ", std::strerror(errno));
    }
    // Writing through a shared map lets several threads fill one file at once
    // (pwrite holds the file's lock while it copies), but a map cannot report a
    // full disk except by SIGBUS: map for writing only where the space can be
    // allocated now; elsewhere (filesystems without fallocate) use pwrite.
    if (map_for_writing_ && f.blob.size > f.frontier) {
      if (::fallocate(f.fd, 0, static_cast<off_t>(f.frontier), static_cast<off_t>(f.blob.size - f.frontier)) == 0) {
        f.writable = true;
      } else if (errno == ENOSPC) {
        throw_error("not enough disk space for the engine: cannot allocate ", f.blob.size - f.frontier, " bytes for ",
                    f.path.string());
      }
    }
    if (f.blob.size > 0) {
      void* p = ::mmap(nullptr, f.blob.size, f.writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, f.fd, 0);
      if (p == MAP_FAILED) throw_error("cannot map ", f.path.string(), ": ", std::strerror(errno));
      f.map = static_cast<std::byte*>(p);
    }
    // Padding right after what add_tensor wrote may already extend the written prefix.
    for (auto it = f.landed.begin(); it != f.landed.end() && it->first <= f.frontier; it = f.landed.erase(it)) {
      f.frontier = std::max(f.frontier, it->second);
    }
  }
  allocated_ = true;
  for (auto& file : ranks_) {
    RankFile* f = file.get();
    f->hasher = std::thread([this, f] { hash_rank(*f); });
  }
}

void EngineWriter::write(int rank, uint64_t offset, const void* data, std::size_t n) {
  if (std::byte* dst = mapped(rank, offset, n)) {
    std::memcpy(dst, data, n);
  } else if (n > 0) {
    write_all(*ranks_[static_cast<std::size_t>(rank)], offset, data, n);
  }
  written(rank, offset, n);
}

std::byte* EngineWriter::mapped(int rank, uint64_t offset, std::size_t n) {
  RankFile& f = *ranks_.at(static_cast<std::size_t>(rank));
  if (!allocated_) throw_error("EngineWriter: write before allocate");
  if (offset + n > f.blob.size) {
    throw_error("EngineWriter: write of ", n, " bytes at ", offset, " is past the end of ", f.path.string(), " (",
                f.blob.size, " bytes)");
  }
  return f.writable ? f.map + offset : nullptr;
}

void EngineWriter::written(int rank, uint64_t offset, std::size_t n) {
  RankFile& f = *ranks_.at(static_cast<std::size_t>(rank));
  if (!allocated_ || offset + n > f.blob.size) throw_error("EngineWriter: written() outside the allocated blob");
  if (n == 0) return;
  bool advanced = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    f.landed.emplace(offset, offset + n);
    for (auto it = f.landed.begin(); it != f.landed.end() && it->first <= f.frontier; it = f.landed.erase(it)) {
      advanced |= it->second > f.frontier;
      f.frontier = std::max(f.frontier, it->second);
    }
  }
  if (advanced) progress_.notify_all();
}

// Runs on its own thread from allocate() on: hashes the file in order, as far
// as it is written, and starts writeback of what it has hashed.
void EngineWriter::hash_rank(RankFile& f) {
  uint64_t pos = f.hashed, flushed = f.hashed;
  while (pos < f.blob.size) {
    uint64_t until;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      progress_.wait(lock, [&] { return stop_ || f.frontier > pos; });
      if (stop_) return;
      until = f.frontier;
    }
    prefault(f.map + pos, until - pos, false);
    f.checksum.update(f.map + pos, until - pos);
    pos = until;
    if (pos - flushed >= kWritebackBytes || pos == f.blob.size) {
      ::sync_file_range(f.fd, static_cast<off_t>(flushed), static_cast<off_t>(pos - flushed), SYNC_FILE_RANGE_WRITE);
      flushed = pos;
    }
  }
  f.hashed = pos;
}

void EngineWriter::add_file(const fs::path& source, const fs::path& relative) {
  const fs::path dest = tmp_ / relative;
  fs::create_directories(dest.parent_path());
  std::error_code ec;
  fs::copy_file(source, dest, fs::copy_options::overwrite_existing, ec);
  if (ec) throw_error("cannot copy ", source.string(), " into the engine: ", ec.message());
  files_.push_back(dest);
}

void EngineWriter::commit(Manifest manifest) {
  if (allocated_) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& f : ranks_) {
        if (f->frontier != f->blob.size) {
          throw_error("EngineWriter: ", f->path.string(), " was not completely written (bytes from ", f->frontier,
                      " of ", f->blob.size, " missing)");
        }
      }
    }
    for (auto& f : ranks_) f->hasher.join();
  }
  manifest.ranks.clear();
  for (auto& f : ranks_) {
    f->blob.checksum = f->checksum.digest();
    f->blob.chunk_bytes = BlobChecksum::kChunkBytes;
    f->blob.chunk_checksums = f->checksum.chunk_digests();
    if (::fsync(f->fd) != 0) throw_error("writing ", f->path.string(), " failed: ", std::strerror(errno));
    if (f->map != nullptr) ::munmap(f->map, f->blob.size);
    f->map = nullptr;
    const int rc = ::close(f->fd);
    f->fd = -1;
    if (rc != 0) throw_error("writing ", f->path.string(), " failed: ", std::strerror(errno));
    manifest.ranks.push_back(f->blob);
  }
  {
    std::ofstream json(tmp_ / "engine.json");
    json << manifest_to_json(manifest).dump(1) << '\n';
    if (!json) throw_error("writing ", (tmp_ / "engine.json").string(), " failed");
  }
  fsync_path(tmp_ / "engine.json");
  std::set<fs::path> dirs = {tmp_};
  for (const auto& file : files_) {
    fsync_path(file);
    dirs.insert(file.parent_path());
  }
  for (const auto& dir : dirs) fsync_path(dir);
  std::error_code ec;
  fs::path old;
  if (fs::exists(output_)) {
    old = staging_path(output_, "old", ::getpid());
    fs::rename(output_, old, ec);
    if (ec) throw_error("cannot move the existing ", output_.string(), " aside: ", ec.message());
  }
  fs::rename(tmp_, output_, ec);
  if (ec) throw_error("cannot move the engine into ", output_.string(), ": ", ec.message());
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
  fsync_path(output_.has_parent_path() ? output_.parent_path() : fs::path("."));
}

}  // namespace kiln::engine
