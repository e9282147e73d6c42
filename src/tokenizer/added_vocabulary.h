// Added tokens of tokenizer.json ("added_tokens"): special tokens such as
// "<|im_start|>" and user-added words, which encode finds in the text before
// the model sees it, honoring each token's lstrip / rstrip / single_word /
// normalized flags as HF tokenizers' AddedVocabulary does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalizers.h"

namespace kiln::tokenizer {

struct AddedToken {
  std::string content;
  bool single_word = false;  // only matches as a whole word
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool normalized = true;    // matched in the normalized text (else in the raw input)
  bool special = false;      // dropped by decode(skip_special_tokens)

  bool operator==(const AddedToken&) const = default;
};

class AddedVocabulary {
 public:
  // A piece of the text: an added token's id, or text for the model.
  struct Segment {
    std::size_t start;
    std::size_t end;
    std::optional<int32_t> token_id;
  };

  // Reads the "added_tokens" array (JSON null for none). Ids are assigned as HF
  // does, whatever ids the file lists: a content the model vocabulary (or an
  // earlier added token) has keeps that id, others take the next free id after
  // the model's vocabulary.
  AddedVocabulary(const JsonNode& added_tokens, const BpeModel& model, const Normalizer* normalizer);

  // Splits raw input on the tokens with normalized=false (normalized=false), or
  // a normalized piece of it on the tokens with normalized=true, whose
  // contents were normalized too. Empty text gives no segments.
  std::vector<Segment> split(std::string_view text, bool normalized) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  // The added token with this id, if any.
  const AddedToken* token_for_id(int32_t id) const;
  // Whether the id's token is special (decode with skip_special_tokens drops it).
  bool is_special_id(int32_t id) const { return special_ids_.contains(id); }
  // How many contents are not in the model vocabulary (the vocabulary grows by that much).
  std::size_t count_outside(const BpeModel& model) const;

 private:
  // Finds, leftmost first and longest among those, the patterns of one trie
  // (HF's Aho-Corasick with MatchKind::LeftmostLongest).
  class LiteralMatcher {
   public:
    void add(std::string pattern, int32_t token_id);
    void finish();
    // The next match at or after `from`: (start, pattern index), or nullopt.
    std::optional<std::pair<std::size_t, std::size_t>> find(std::string_view text, std::size_t from) const;
    const std::string& pattern(std::size_t index) const { return patterns_[index]; }
    int32_t token_id(std::size_t index) const { return token_ids_[index]; }

   private:
    std::vector<std::string> patterns_;
    std::vector<int32_t> token_ids_;
    std::vector<std::vector<std::size_t>> by_first_byte_;  // pattern indices, longest first
  };

  void add(const AddedToken& token, const BpeModel& model);
  std::vector<Segment> split_with(std::string_view text, const LiteralMatcher& matcher) const;

  std::unordered_map<std::string, int32_t> id_of_content_;
  std::unordered_map<int32_t, AddedToken> token_of_id_;
  std::vector<AddedToken> special_tokens_;  // in file order
  std::vector<AddedToken> other_tokens_;    // in file order
  std::unordered_set<std::string> special_contents_;
  std::optional<int32_t> max_id_;  // the highest id given to an added token
  std::unordered_set<int32_t> special_ids_;
  LiteralMatcher raw_matcher_;
  LiteralMatcher normalized_matcher_;
};

}  // namespace kiln::tokenizer
