#include "engine/engine_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include "core/error.h"

namespace kiln::engine {
namespace fs = std::filesystem;

namespace {
void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

EngineWriter::EngineWriter(fs::path output, int ranks, bool force) : output_(std::move(output)), force_(force) {
  if (output_.filename().empty()) output_ = output_.parent_path();
  if (fs::exists(output_) && !force_) {
    throw_error("output ", output_.string(), " already exists; pass --force to replace it");
  }
  const fs::path parent = output_.has_parent_path() ? output_.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  tmp_ = parent / concat(".", output_.filename().string(), ".tmp-", ::getpid());
  fs::remove_all(tmp_, ec);
  if (!fs::create_directory(tmp_, ec)) throw_error("cannot create ", tmp_.string(), ": ", ec.message());
  for (int r = 0; r < ranks; ++r) {
    auto file = std::make_unique<RankFile>();
    file->blob.file = concat("rank", r, ".bin");
    file->out.open(tmp_ / file->blob.file, std::ios::binary);
    if (!file->out) throw_error("cannot write ", (tmp_ / file->blob.file).string());
    ranks_.push_back(std::move(file));
  }
}

EngineWriter::~EngineWriter() {
  if (!committed_) {
    ranks_.clear();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void EngineWriter::add_tensor(int rank, const std::string& name, DType dtype, const Shape& shape,
                              const std::string& layout, const void* data, std::size_t nbytes) {
  RankFile& f = *ranks_.at(static_cast<std::size_t>(rank));
  static const char kZeros[kTensorAlignment] = {};
  const uint64_t pad = (kTensorAlignment - f.blob.size % kTensorAlignment) % kTensorAlignment;
  f.out.write(kZeros, static_cast<std::streamsize>(pad));
  f.checksum.update(kZeros, pad);
  f.blob.size += pad;
  f.blob.tensors.push_back(TensorEntry{name, dtype, shape, layout, f.blob.size, nbytes});
  f.out.write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  f.checksum.update(data, nbytes);
  f.blob.size += nbytes;
  if (!f.out) throw_error("writing ", (tmp_ / f.blob.file).string(), " failed (disk full?)");
}

void EngineWriter::add_file(const fs::path& source, const fs::path& relative) {
  const fs::path dest = tmp_ / relative;
  fs::create_directories(dest.parent_path());
  std::error_code ec;
  fs::copy_file(source, dest, fs::copy_options::overwrite_existing, ec);
  if (ec) throw_error("cannot copy ", source.string(), " into the engine: ", ec.message());
}

void EngineWriter::commit(Manifest manifest) {
  manifest.ranks.clear();
  for (auto& f : ranks_) {
    f->out.close();
    if (!f->out) throw_error("writing ", (tmp_ / f->blob.file).string(), " failed");
    f->blob.checksum = f->checksum.digest();
    fsync_path(tmp_ / f->blob.file);
    manifest.ranks.push_back(f->blob);
  }
  {
    std::ofstream json(tmp_ / "engine.json");
    json << manifest_to_json(manifest).dump(1) << '\n';
    if (!json) throw_error("writing ", (tmp_ / "engine.json").string(), " failed");
  }
  fsync_path(tmp_ / "engine.json");
  std::error_code ec;
  fs::path old;
  if (fs::exists(output_)) {
    old = output_.parent_path() / concat(".", output_.filename().string(), ".old-", ::getpid());
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
