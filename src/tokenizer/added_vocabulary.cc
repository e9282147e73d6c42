#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <unordered_set>

#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

AddedToken parse_added_token(const JsonNode& entry) {
  AddedToken token;
  token.content = entry.string("content");
  token.special = entry.bool_or("special", false);
  token.single_word = entry.bool_or("single_word", false);
  token.lstrip = entry.bool_or("lstrip", false);
  token.rstrip = entry.bool_or("rstrip", false);
  token.normalized = entry.bool_or("normalized", !token.special);
  return token;
}

// Byte offset where the trailing whitespace of `text` begins (regex \s*$).
std::size_t trailing_whitespace_start(std::string_view text) {
  std::size_t start = text.size();
  while (start > 0) {
    std::size_t char_start = start - 1;
    while (char_start > 0 && (static_cast<unsigned char>(text[char_start]) & 0xc0) == 0x80) --char_start;
    if (!is_whitespace(code_point_at(text, char_start))) break;
    start = char_start;
  }
  return start;
}

// Length in bytes of the leading whitespace of `text` (regex ^\s*).
std::size_t leading_whitespace_length(std::string_view text) {
  std::size_t end = 0;
  while (end < text.size()) {
    std::size_t next = end;
    if (!is_whitespace(next_code_point(text, next))) break;
    end = next;
  }
  return end;
}

}  // namespace

void AddedVocabulary::LiteralMatcher::add(std::string pattern, int32_t token_id) {
  if (pattern.empty()) return;
  patterns_.push_back(std::move(pattern));
  token_ids_.push_back(token_id);
}

void AddedVocabulary::LiteralMatcher::finish() {
  by_first_byte_.assign(256, {});
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(patterns_[i].front())].push_back(i);
  }
  // Longest first; among equal lengths the earlier pattern wins, as in Aho-Corasick.
  for (auto& candidates : by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](std::size_t a, std::size_t b) { return patterns_[a].size() > patterns_[b].size(); });
  }
}

std::optional<std::pair<std::size_t, std::size_t>> AddedVocabulary::LiteralMatcher::find(std::string_view text,
                                                                                         std::size_t from) const {
  if (patterns_.empty()) return std::nullopt;
  for (std::size_t i = from; i < text.size(); ++i) {
    for (const std::size_t index : by_first_byte_[static_cast<uint8_t>(text[i])]) {
      if (text.substr(i).starts_with(patterns_[index])) return std::make_pair(i, index);
    }
  }
  return std::nullopt;
}

AddedVocabulary::AddedVocabulary(const JsonNode& added_tokens, const BpeModel& model, const Normalizer* normalizer) {
  if (!added_tokens.is_null()) {
    for (std::size_t i = 0; i < added_tokens.array_size(); ++i) add(parse_added_token(added_tokens[i]), model);
  }
  // Matchers over every token, specials first (HF's refresh_added_tokens); the
  // flags that apply to a match are those of the token now holding its id.
  const auto lookup = [&](const std::string& content) {
    const auto it = id_of_content_.find(content);
    return it != id_of_content_.end() ? std::optional<int32_t>(it->second) : model.token_to_id(content);
  };
  for (const auto* list : {&special_tokens_, &other_tokens_}) {
    for (const AddedToken& token : *list) {
      const int32_t id = *lookup(token.content);
      if (token.normalized) {
        normalized_matcher_.add(normalizer ? normalizer->normalize(token.content) : token.content, id);
      } else {
        raw_matcher_.add(token.content, id);
      }
    }
  }
  raw_matcher_.finish();
  normalized_matcher_.finish();

  // decode(skip_special_tokens) drops an id whose token string is a special token's content.
  for (const auto& [id, token] : token_of_id_) {
    if (special_contents_.contains(token.content)) special_ids_.insert(id);
  }
  for (const std::string& content : special_contents_) {
    const auto id = model.token_to_id(content);
    if (id && !token_of_id_.contains(*id)) special_ids_.insert(*id);
  }
}

void AddedVocabulary::add(const AddedToken& token, const BpeModel& model) {
  if (token.content.empty()) return;
  if (token.special && special_contents_.insert(token.content).second) special_tokens_.push_back(token);
  const auto known = id_of_content_.find(token.content);
  if (known != id_of_content_.end() && token_of_id_.at(known->second) == token) return;  // a repeat
  int32_t id = 0;
  if (known != id_of_content_.end()) {
    id = known->second;
  } else if (const auto model_id = model.token_to_id(token.content)) {
    id = *model_id;
  } else {
    // After the model's vocabulary, or after the highest id given out so far
    // when that is already beyond it.
    const auto model_size = static_cast<int32_t>(model.vocab_size());
    id = max_id_ && (*max_id_ >= model_size || model_size == 0) ? *max_id_ + 1 : model_size;
  }
  id_of_content_[token.content] = id;
  max_id_ = std::max(max_id_.value_or(id), id);
  token_of_id_[id] = token;
  if (!special_contents_.contains(token.content)) other_tokens_.push_back(token);
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::split(std::string_view text, bool normalized) const {
  return split_with(text, normalized ? normalized_matcher_ : raw_matcher_);
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::split_with(std::string_view text,
                                                                  const LiteralMatcher& matcher) const {
  std::vector<Segment> segments;
  if (text.empty()) return segments;
  std::size_t covered = 0;  // end of the last segment emitted
  std::size_t search_from = 0;
  while (const auto found = matcher.find(text, search_from)) {
    std::size_t start = found->first;
    std::size_t stop = start + matcher.pattern(found->second).size();
    search_from = stop;  // the search resumes after the raw match, whatever happens to it
    const int32_t id = matcher.token_id(found->second);
    const AddedToken& token = token_of_id_.at(id);
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_character(last_code_point(text.substr(0, start)));
      const bool space_after = stop == text.size() || !is_word_character(code_point_at(text, stop));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_whitespace_start(text.substr(0, start)), covered);
    if (token.rstrip) stop += leading_whitespace_length(text.substr(stop));
    if (covered < start) segments.push_back({covered, start, std::nullopt});
    segments.push_back({start, stop, id});
    covered = stop;
  }
  if (covered != text.size()) segments.push_back({covered, text.size(), std::nullopt});
  return segments;
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  const auto it = id_of_content_.find(std::string(content));
  if (it == id_of_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::token_for_id(int32_t id) const {
  const auto it = token_of_id_.find(id);
  return it == token_of_id_.end() ? nullptr : &it->second;
}

std::size_t AddedVocabulary::count_outside(const BpeModel& model) const {
  return static_cast<std::size_t>(std::count_if(id_of_content_.begin(), id_of_content_.end(),
                                                [&](const auto& entry) { return !model.token_to_id(entry.first); }));
}

}  // namespace kiln::tokenizer
