// A value inside a tokenizer file together with where it is, e.g.
// "/models/x/tokenizer.json: pre_tokenizer.pretokenizers[1]", so that every
// configuration error names the file and the field at fault.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace kiln::tokenizer {

class JsonNode {
 public:
  // The root of `file`'s JSON.
  JsonNode(const nlohmann::json& value, std::string file) : value_(&value), file_(std::move(file)) {}

  const nlohmann::json& json() const { return *value_; }
  // "file" for the root, "file: a.b[2]" inside it.
  std::string location() const { return path_.empty() ? file_ : file_ + ": " + path_; }
  bool is_null() const { return value_->is_null(); }

  // Whether the object has `key` with a non-null value.
  bool has(std::string_view key) const;
  // A required member of an object (throws when missing or null).
  JsonNode operator[](std::string_view key) const;
  // An element of an array.
  JsonNode operator[](std::size_t index) const;
  // The number of elements of an array (throws when it is not one).
  std::size_t array_size() const;

  // Required fields, type-checked.
  std::string string(std::string_view key) const;
  // Optional fields: the fallback when missing or null, an error when of another type.
  std::string string_or(std::string_view key, std::string fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;
  int64_t int_or(std::string_view key, int64_t fallback) const;
  // A required string field holding exactly one character (Metaspace's "replacement").
  char32_t character(std::string_view key) const;
  // The "type" field that names a component.
  std::string type() const { return string("type"); }

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    throw_error(location(), ": ", std::forward<Parts>(parts)...);
  }

 private:
  JsonNode(const nlohmann::json& value, std::string file, std::string path)
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

// The steps of a "Sequence" component (normalizers, pre-tokenizers,
// post-processors, decoders all nest the same way): `make` builds each item
// of `list`, and items it returns null for (null entries) are left out.
template <typename Component, typename Make>
std::vector<std::unique_ptr<Component>> make_steps(const JsonNode& list, Make make) {
  std::vector<std::unique_ptr<Component>> steps;
  for (std::size_t i = 0; i < list.array_size(); ++i) {
    if (auto step = make(list[i])) steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace kiln::tokenizer
