// Writes an engine directory atomically: everything goes into a hidden
// temporary sibling, engine.json is written last, and only commit() renames the
// result into place. A build that fails or is interrupted leaves no engine.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/checksum.h"
#include "engine/manifest.h"

namespace kiln::engine {

class EngineWriter {
 public:
  // Refuses an existing `output` unless `force`; creates the temporary directory.
  EngineWriter(std::filesystem::path output, int ranks, bool force);
  ~EngineWriter();  // removes the temporary directory unless committed
  EngineWriter(const EngineWriter&) = delete;
  EngineWriter& operator=(const EngineWriter&) = delete;

  void add_tensor(int rank, const std::string& name, DType dtype, const Shape& shape, const std::string& layout,
                  const void* data, std::size_t nbytes);
  // Copies a file (tokenizer, generation config) to `relative` inside the engine.
  void add_file(const std::filesystem::path& source, const std::filesystem::path& relative);
  // Fills in the rank tables, writes engine.json and moves the engine into place.
  void commit(Manifest manifest);

  const std::filesystem::path& temporary_dir() const { return tmp_; }

 private:
  struct RankFile {
    std::ofstream out;
    RankBlob blob;
    Checksum64 checksum;
  };
  std::filesystem::path output_;
  std::filesystem::path tmp_;
  bool force_;
  bool committed_ = false;
  std::vector<std::unique_ptr<RankFile>> ranks_;
};

}  // namespace kiln::engine
