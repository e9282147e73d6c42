// JSON on both sides of a template: the render context arrives as JSON (messages, tools, ...), and the tojson
// filter writes values as Python's json.dumps does (transformers' override: ensure_ascii=False, ", " and ": "
// separators unless indenting).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

// Objects keep the JSON's key order: ordered_json keeps the document's, nlohmann::json sorts keys.
Value from_json(const nlohmann::json& json);
Value from_json(const nlohmann::ordered_json& json);

struct JsonDumpOptions {
  std::optional<std::string> indent;  // nullopt: one line
  std::string item_separator = ", ";  // json.dumps uses "," when indenting
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(value, ...); values JSON cannot hold (Undefined, namespaces, callables) are a TypeError.
std::string dump_json(const Value& value, const JsonDumpOptions& options);

}  // namespace kiln::tokenizer::jinja
