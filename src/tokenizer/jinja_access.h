// How templates reach into values, with Jinja2's sandboxed rules: `obj.name` tries the Python attribute (a
// method) before the item, `obj[key]` the item before the attribute, and a miss is an Undefined that names
// what was missing. Also Python's iteration, len() and slicing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace kiln::tokenizer::jinja {

// obj.name
Value get_attribute(const Value& object, std::string_view name);
// obj[key]
Value get_item(const Value& object, const Value& key);
// obj[start:stop:step] on a str, list or tuple.
Value get_slice(const Value& object, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                std::optional<std::int64_t> step);
// The items `for x in value` visits: a list's items, a dict's keys, a string's characters; Undefined is empty.
std::vector<Value> iterate(const Value& value);
// len(value); Undefined has length 0.
std::int64_t length(const Value& value);

}  // namespace kiln::tokenizer::jinja
