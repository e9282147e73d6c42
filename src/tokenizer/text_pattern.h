// The {"String": ...} / {"Regex": ...} pattern that Split pre-tokenizers and
// Replace normalizers/decoders carry.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_node.h"
#include "tokenizer/regex.h"

namespace kiln::tokenizer {

class TextPattern {
 public:
  // Throws kiln::Error naming the field when the pattern is malformed.
  static TextPattern from_json(const JsonNode& pattern);

  // Non-overlapping matches, left to right. An empty literal matches nothing.
  std::vector<Regex::Match> find_all(std::string_view text) const;
  // Every match replaced by `content`; for a regex, $1 / ${name} in `content` expand groups.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // set for {"Regex": ...}
};

}  // namespace kiln::tokenizer
