#include "checkpoint/safetensors_file.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using nlohmann::json;

struct DTypeCode {
  std::string_view code;
  DType type;
};
constexpr DTypeCode kDTypeCodes[] = {
    {"F64", DType::f64}, {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"F8_E4M3", DType::f8e4m3},
    {"I64", DType::i64}, {"I32", DType::i32}, {"I8", DType::i8},   {"U8", DType::u8},     {"BOOL", DType::boolean},
};

std::string_view dtype_code(DType type) {
  for (const auto& c : kDTypeCodes) {
    if (c.type == type) return c.code;
  }
  return "?";
}

std::string supported_codes() {
  std::string out;
  for (const auto& c : kDTypeCodes) out += concat(out.empty() ? "" : ", ", c.code);
  return out;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<uint64_t>(p[i]);
  return v;
}

// Everything one header entry says, checked against the data section.
class HeaderParser {
 public:
  HeaderParser(const std::filesystem::path& path, std::size_t data_size) : path_(path), data_size_(data_size) {}

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    throw_error("safetensors file ", path_.string(), ": ", std::forward<Parts>(parts)...);
  }

  DType parse_dtype(const std::string& name, const json& entry) const {
    const json& code = entry.at("dtype");
    if (!code.is_string()) fail("tensor '", name, "': dtype is not a string");
    for (const auto& c : kDTypeCodes) {
      if (c.code == code.get_ref<const std::string&>()) return c.type;
    }
    fail("tensor '", name, "': unsupported dtype ", code.get<std::string>(), " (supported: ", supported_codes(), ")");
  }

  Shape parse_shape(const std::string& name, const json& entry) const {
    const json& dims = entry.at("shape");
    if (!dims.is_array()) fail("tensor '", name, "': shape is not an array");
    Shape shape;
    for (const json& d : dims) {
      if (!d.is_number_integer()) fail("tensor '", name, "': shape ", dims.dump(), " holds a non-integer");
      shape.push_back(d.get<int64_t>());
    }
    for (int64_t d : shape) {
      if (d < 0) fail("tensor '", name, "': negative dimension in shape ", shape_str(shape));
    }
    return shape;
  }

  std::pair<uint64_t, uint64_t> parse_offsets(const std::string& name, const json& entry) const {
    const json& offsets = entry.at("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      fail("tensor '", name, "': data_offsets ", offsets.dump(), " is not a pair of non-negative integers");
    }
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    if (begin > end) fail("tensor '", name, "': data_offsets begin ", begin, " > end ", end);
    if (end > data_size_) {
      fail("tensor '", name, "': data_offsets end ", end, " is past the end of the data section (", data_size_,
           " bytes)");
    }
    return {begin, end};
  }

  void check_byte_count(const std::string& name, DType dtype, const Shape& shape, uint64_t given) const {
    uint64_t needed = dtype_size(dtype);
    for (int64_t d : shape) {
      if (__builtin_mul_overflow(needed, static_cast<uint64_t>(d), &needed)) {
        fail("tensor '", name, "': shape ", shape_str(shape), " is too large");
      }
    }
    if (needed != given) {
      fail("tensor '", name, "': wrong byte count: shape ", shape_str(shape), " of ", dtype_code(dtype), " needs ",
           needed, " bytes, offsets give ", given);
    }
  }

 private:
  const std::filesystem::path& path_;
  std::size_t data_size_;
};

struct ByteRange {
  uint64_t begin;
  uint64_t end;
  const std::string* name;
};

void check_no_overlap(std::vector<ByteRange> ranges, const HeaderParser& parser) {
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
  const ByteRange* furthest = nullptr;  // of the ranges seen so far, the one ending last
  for (const ByteRange& r : ranges) {
    if (r.begin == r.end) continue;  // empty tensors occupy no bytes
    if (furthest != nullptr && r.begin < furthest->end) {
      parser.fail("overlapping offsets: tensor '", *furthest->name, "' [", furthest->begin, ", ", furthest->end,
                  ") and tensor '", *r.name, "' [", r.begin, ", ", r.end, ")");
    }
    if (furthest == nullptr || r.end > furthest->end) furthest = &r;
  }
}

}  // namespace

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile(MappedFile::open(path)));
  const std::byte* bytes = file->map_->data();
  const std::size_t size = file->map_->size();
  if (size < 8) throw_error("safetensors file ", path.string(), ": file is shorter than 8 bytes (", size, " bytes)");
  const uint64_t header_size = read_u64_le(bytes);
  if (header_size > size - 8) {
    throw_error("safetensors file ", path.string(), ": header past the end: header length ", header_size,
                " but the file has ", size - 8, " bytes after the length");
  }
  const std::byte* header_begin = bytes + 8;
  file->data_section_ = header_begin + header_size;
  HeaderParser parser(path, size - 8 - header_size);

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(header_begin),
                         reinterpret_cast<const char*>(header_begin + header_size));
  } catch (const json::exception& e) {
    parser.fail("header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) parser.fail("header is not a JSON object");

  std::vector<ByteRange> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) parser.fail("__metadata__ is not an object");
      file->metadata_ = entry;
      continue;
    }
    if (!entry.is_object()) parser.fail("tensor '", name, "': entry is not an object");
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!entry.contains(field)) parser.fail("tensor '", name, "': entry has no ", field);
    }
    const DType dtype = parser.parse_dtype(name, entry);
    Shape shape = parser.parse_shape(name, entry);
    const auto [begin, end] = parser.parse_offsets(name, entry);
    parser.check_byte_count(name, dtype, shape, end - begin);
    auto [it, inserted] = file->entries_.emplace(name, Entry{dtype, std::move(shape), begin});
    ranges.push_back({begin, end, &it->first});
  }
  check_no_overlap(std::move(ranges), parser);
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(std::string_view name) const { return entries_.find(name) != entries_.end(); }

TensorView SafetensorsFile::get(std::string_view name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw_error("tensor '", name, "' not found in ", path().string());
  return TensorView{it->second.dtype, it->second.shape, data_section_ + it->second.begin, map_};
}

}  // namespace kiln::checkpoint
