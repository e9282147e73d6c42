// Writes an engine directory atomically: everything goes into a hidden
// temporary sibling, engine.json is written last, and only commit() renames the
// result into place. A build that fails or is interrupted leaves no engine.
//
// Tensors are written either one after another (add_tensor), or planned: every
// tensor is reserved first (reserve_tensor: offsets are fixed then), allocate()
// sizes the blobs, and write() then fills the reserved bytes in any order from
// any number of threads. Either way each blob's Checksum64 covers the whole
// file in order: for planned writes a thread per rank hashes the file as the
// written prefix grows, so checksumming overlaps the writing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/checksum.h"
#include "engine/manifest.h"

namespace kiln::engine {

class EngineWriter {
 public:
  // Refuses an existing `output` unless `force`; creates the temporary directory.
  // `map_for_writing` false keeps planned writes on pwrite (see mapped()).
  EngineWriter(std::filesystem::path output, int ranks, bool force, bool map_for_writing = true);
  ~EngineWriter();  // removes the temporary directory unless committed
  EngineWriter(const EngineWriter&) = delete;
  EngineWriter& operator=(const EngineWriter&) = delete;

  // Appends a tensor to rank `rank`'s blob and writes it now. Not after allocate().
  void add_tensor(int rank, const std::string& name, DType dtype, const Shape& shape, const std::string& layout,
                  const void* data, std::size_t nbytes);

  // Appends a tensor of `nbytes` to rank `rank`'s blob without writing it;
  // returns its offset in the blob. Not after allocate().
  uint64_t reserve_tensor(int rank, const std::string& name, DType dtype, const Shape& shape, const std::string& layout,
                          uint64_t nbytes);
  // Sizes every blob for the reserved tensors (failing here, before any
  // reserved byte is written, when the disk is too small) and starts hashing.
  void allocate();
  // Writes bytes at `offset` of rank `rank`'s blob, inside reserved tensors.
  // Thread-safe; after allocate(). Every reserved byte must be written once
  // before commit().
  void write(int rank, uint64_t offset, const void* data, std::size_t n);
  // Where the blobs are mapped for writing (after allocate(), on filesystems
  // that can reserve the space up front): bytes [offset, offset + n) of rank
  // `rank`'s blob to fill in place, then report with written(). Null when the
  // blob is not mapped: use write() then. Thread-safe.
  std::byte* mapped(int rank, uint64_t offset, std::size_t n);
  void written(int rank, uint64_t offset, std::size_t n);

  // Copies a file (tokenizer, generation config) to `relative` inside the engine.
  void add_file(const std::filesystem::path& source, const std::filesystem::path& relative);
  // Fills in the rank tables, writes engine.json and moves the engine into place.
  void commit(Manifest manifest);

  const std::filesystem::path& temporary_dir() const { return tmp_; }

 private:
  struct RankFile {
    std::filesystem::path path;
    int fd = -1;
    RankBlob blob;
    BlobChecksum checksum;
    uint64_t hashed = 0;  // bytes of the file the checksum has taken in
    // Planned writes: the file mapped for reading, the length of the prefix
    // written so far, and the written ranges beyond it (begin -> end).
    std::byte* map = nullptr;
    bool writable = false;  // map is writable: written through it, not with pwrite
    uint64_t frontier = 0;
    std::map<uint64_t, uint64_t> landed;
    std::thread hasher;
  };
  void hash_rank(RankFile& file);
  void stop_hashing();
  void write_all(RankFile& file, uint64_t offset, const void* data, std::size_t n);

  std::filesystem::path output_;
  std::filesystem::path tmp_;
  bool force_;
  bool map_for_writing_;
  bool committed_ = false;
  bool allocated_ = false;
  std::vector<std::unique_ptr<RankFile>> ranks_;
  std::vector<std::filesystem::path> files_;  // added with add_file, fsynced at commit
  std::mutex mutex_;                          // guards frontier, landed, stop_ and hash errors
  std::condition_variable progress_;
  bool stop_ = false;
};

}  // namespace kiln::engine
