// The subset of Python's pickle (protocols 2 to 5) that torch.save writes for a
// state dict, read into a small value tree. Nothing is executed: the only
// globals accepted are the handful a state dict uses (OrderedDict, torch's
// tensor rebuild functions and storage types), and they are interpreted here;
// any other global is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace kiln::checkpoint {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleNone {};
struct PickleTuple {
  std::vector<PickleRef> items;
};
struct PickleList {
  std::vector<PickleRef> items;
};
struct PickleDict {
  std::vector<std::pair<PickleRef, PickleRef>> items;  // in insertion order
};
// A class or function named by GLOBAL or STACK_GLOBAL; always one kiln recognises.
struct PickleGlobal {
  std::string module;
  std::string name;
};
// The persistent id torch writes for a storage: ('storage', type, key, location, numel).
// The bytes live in the archive at data/<key>.
struct TorchStorageRef {
  DType dtype = DType::u8;
  std::string key;
};
// What torch._utils._rebuild_tensor_v2 would build: a strided view of a storage,
// offset and strides counted in elements.
struct TorchTensorRef {
  TorchStorageRef storage;
  int64_t storage_offset = 0;
  Shape size;
  std::vector<int64_t> stride;
};

struct PickleValue {
  std::variant<PickleNone, bool, int64_t, double, std::string, PickleTuple, PickleList, PickleDict, PickleGlobal,
               TorchStorageRef, TorchTensorRef>
      value;
};

// "None", "int", "str", "tensor", ...: for messages about unexpected values.
std::string_view pickle_kind(const PickleValue& v);

// Reads one pickle up to its STOP. `source` names it in errors. Throws
// kiln::Error on an unsupported opcode or global, or malformed data.
PickleRef read_pickle(std::span<const std::byte> bytes, const std::string& source);

}  // namespace kiln::checkpoint
