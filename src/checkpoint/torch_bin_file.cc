#include "checkpoint/torch_bin_file.h"

#include <cstring>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

// Row-major with no gaps, as torch defines it: dimensions of size 1 may carry any stride.
bool is_contiguous(const TorchTensorRef& t) {
  int64_t expected = 1;
  for (std::size_t i = t.size.size(); i-- > 0;) {
    if (t.size[i] != 1 && t.stride[i] != expected) return false;
    expected *= t.size[i];
  }
  return true;
}

// Bytes of storage the tensor reaches, from the start of the storage; false on overflow.
bool storage_bytes_needed(const TorchTensorRef& t, uint64_t* out) {
  if (shape_numel(t.size) == 0) {
    *out = 0;
    return true;
  }
  uint64_t last = static_cast<uint64_t>(t.storage_offset);  // index of the last element reached
  for (std::size_t i = 0; i < t.size.size(); ++i) {
    uint64_t reach;
    if (__builtin_mul_overflow(static_cast<uint64_t>(t.size[i] - 1), static_cast<uint64_t>(t.stride[i]), &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      return false;
    }
  }
  return !__builtin_add_overflow(last, uint64_t{1}, &last) &&
         !__builtin_mul_overflow(last, uint64_t{dtype_size(t.storage.dtype)}, out);
}

// Gathers a strided tensor into a new contiguous buffer, walking its indices
// like an odometer so that each step moves the source by one stride.
TensorView copy_contiguous(const TorchTensorRef& t, const std::byte* storage) {
  const std::size_t element = dtype_size(t.storage.dtype);
  const int64_t numel = shape_numel(t.size);
  auto buffer = std::make_shared_for_overwrite<std::byte[]>(static_cast<std::size_t>(numel) * element);
  const std::byte* source = storage + static_cast<std::size_t>(t.storage_offset) * element;
  std::vector<int64_t> index(t.size.size(), 0);
  int64_t offset = 0;  // in elements from `source`
  for (int64_t i = 0; i < numel; ++i) {
    std::memcpy(buffer.get() + static_cast<std::size_t>(i) * element, source + offset * element, element);
    for (std::size_t d = t.size.size(); d-- > 0;) {
      offset += t.stride[d];
      if (++index[d] < t.size[d]) break;
      offset -= t.stride[d] * t.size[d];
      index[d] = 0;
    }
  }
  const void* data = buffer.get();
  return TensorView{t.storage.dtype, t.size, data, std::move(buffer)};
}

void check_little_endian(const ZipArchive& archive, const std::string& prefix) {
  const ZipEntry* entry = archive.find(prefix + "byteorder");
  if (entry == nullptr) return;  // archives from older torch have none, and are little-endian
  const auto bytes = archive.read(*entry).bytes;
  const std::string_view order(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (order != "little") {
    throw_error(archive.path().string(), ": byte order '", order, "' is not supported (only little-endian)");
  }
}

}  // namespace

std::shared_ptr<const TorchBinFile> TorchBinFile::open(const std::filesystem::path& path) {
  auto map = MappedFile::open(path);
  // Before 1.6 torch.save wrote a bare pickle (starting with the PROTO opcode)
  // followed by raw storages; that layout is not read.
  if (map->size() > 0 && map->data()[0] == std::byte{0x80}) {
    throw_error(path.string(),
                ": legacy (pre-1.6) PyTorch format is not supported: re-save with "
                "torch.save(..., _use_new_zipfile_serialization=True) or convert to safetensors");
  }
  const ZipArchive archive(std::move(map));

  // The archive's top folder is named after the file torch.save wrote to, so
  // it is found rather than assumed.
  const ZipEntry* pickle = nullptr;
  for (const ZipEntry& entry : archive.entries()) {
    if (!entry.name.ends_with("/data.pkl")) continue;
    if (pickle != nullptr) throw_error(path.string(), ": two state dicts (", pickle->name, " and ", entry.name, ")");
    pickle = &entry;
  }
  if (pickle == nullptr) throw_error(path.string(), ": no <folder>/data.pkl entry: not a torch.save checkpoint");
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - std::string_view("data.pkl").size());
  check_little_endian(archive, prefix);

  const PickleRef root = read_pickle(archive.read(*pickle).bytes, path.string());
  const auto* dict = std::get_if<PickleDict>(&root->value);
  if (dict == nullptr) {
    throw_error(path.string(), ": holds a value of type ", pickle_kind(*root),
                ", not a state dict (a dict of tensors)");
  }

  auto file = std::shared_ptr<TorchBinFile>(new TorchBinFile(path));
  std::map<std::string, ZipEntryData, std::less<>> storages;  // by key; tensors may share one
  for (const auto& [key, value] : dict->items) {
    const auto* name = std::get_if<std::string>(&key->value);
    if (name == nullptr) throw_error(path.string(), ": state dict key of type ", pickle_kind(*key), ", not str");
    const auto* tensor = std::get_if<TorchTensorRef>(&value->value);
    if (tensor == nullptr) {
      throw_error(path.string(), ": entry '", *name, "' is of type ", pickle_kind(*value),
                  ", not a tensor (kiln reads flat state dicts of tensors)");
    }
    auto storage = storages.find(tensor->storage.key);
    if (storage == storages.end()) {
      const ZipEntry* data = archive.find(prefix + "data/" + tensor->storage.key);
      if (data == nullptr) {
        throw_error(path.string(), ": tensor '", *name, "': storage ", prefix, "data/", tensor->storage.key,
                    " is missing from the archive");
      }
      storage = storages.emplace(tensor->storage.key, archive.read(*data)).first;
    }
    uint64_t needed = 0;
    if (!storage_bytes_needed(*tensor, &needed) || needed > storage->second.bytes.size()) {
      throw_error(path.string(), ": tensor '", *name, "' (offset ", tensor->storage_offset, ", size ",
                  shape_str(tensor->size), ", stride ", shape_str(tensor->stride), ", ",
                  dtype_name(tensor->storage.dtype), ") reaches past the end of its storage ", tensor->storage.key,
                  " of ", storage->second.bytes.size(), " bytes");
    }
    if (!file->entries_.emplace(*name, Entry{*tensor, storage->second}).second) {
      throw_error(path.string(), ": tensor '", *name, "' appears twice");
    }
  }
  return file;
}

std::vector<std::string> TorchBinFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

bool TorchBinFile::contains(std::string_view name) const { return entries_.find(name) != entries_.end(); }

TensorView TorchBinFile::get(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw_error("tensor '", name, "' not found in ", path_.string());
  const auto& [tensor, storage] = it->second;
  if (!is_contiguous(tensor)) return copy_contiguous(tensor, storage.bytes.data());
  const std::size_t offset = shape_numel(tensor.size) == 0 ? 0 : static_cast<std::size_t>(tensor.storage_offset);
  return TensorView{tensor.storage.dtype, tensor.size, storage.bytes.data() + offset * dtype_size(tensor.storage.dtype),
                    storage.owner};
}

}  // namespace kiln::checkpoint
