#include "tokenizer/json_node.h"

#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {

bool JsonNode::has(std::string_view key) const {
  if (!value_->is_object()) return false;
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonNode JsonNode::operator[](std::string_view key) const {
  if (!value_->is_object()) fail("expected an object");
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) fail("missing field \"", key, "\"");
  return JsonNode(*it, file_, path_.empty() ? std::string(key) : concat(path_, ".", key));
}

JsonNode JsonNode::operator[](std::size_t index) const {
  if (!value_->is_array() || index >= value_->size()) fail("expected an array with an element ", index);
  return JsonNode((*value_)[index], file_, concat(path_, "[", index, "]"));
}

std::size_t JsonNode::array_size() const {
  if (!value_->is_array()) fail("expected an array");
  return value_->size();
}

std::string JsonNode::string(std::string_view key) const {
  const JsonNode member = (*this)[key];
  if (!member.json().is_string()) member.fail("expected a string");
  return member.json().get<std::string>();
}

std::string JsonNode::string_or(std::string_view key, std::string fallback) const {
  if (!has(key)) return fallback;
  return string(key);
}

bool JsonNode::bool_or(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const JsonNode member = (*this)[key];
  if (!member.json().is_boolean()) member.fail("expected true or false");
  return member.json().get<bool>();
}

int64_t JsonNode::int_or(std::string_view key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const JsonNode member = (*this)[key];
  if (!member.json().is_number_integer()) member.fail("expected an integer");
  return member.json().get<int64_t>();
}

char32_t JsonNode::character(std::string_view key) const {
  const std::string text = string(key);
  std::size_t end = 0;
  if (!text.empty() && is_valid_utf8(text)) next_code_point(text, end);
  if (text.empty() || end != text.size()) (*this)[key].fail("expected exactly one character");
  return first_code_point(text);
}

}  // namespace kiln::tokenizer
