#include "tokenizer/text_pattern.h"

namespace kiln::tokenizer {

TextPattern TextPattern::from_json(const JsonNode& pattern) {
  TextPattern result;
  if (pattern.has("String")) {
    result.literal_ = pattern.string("String");
  } else if (pattern.has("Regex")) {
    const std::string source = pattern.string("Regex");
    try {
      result.regex_ = std::make_shared<const Regex>(source);
    } catch (const Error& e) {
      pattern["Regex"].fail(e.what());
    }
  } else {
    pattern.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return result;
}

std::vector<Regex::Match> TextPattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<Regex::Match> matches;
  if (literal_.empty()) return matches;
  std::size_t at = text.find(literal_);
  while (at != std::string_view::npos) {
    matches.push_back({at, at + literal_.size()});
    at = text.find(literal_, at + literal_.size());
  }
  return matches;
}

std::string TextPattern::replace_all(std::string_view text, std::string_view content) const {
  if (regex_) return regex_->replace_all(text, content, /*expand_groups=*/true);
  std::string out;
  std::size_t copied = 0;
  for (const Regex::Match& m : find_all(text)) {
    out.append(text.substr(copied, m.start - copied));
    out.append(content);
    copied = m.end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace kiln::tokenizer
