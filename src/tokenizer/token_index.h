// Token string -> id lookup over a vocabulary of up to a few hundred thousand
// entries. BPE probes it for every character of every word, and three times
// per merge while loading, so it is an open-addressing table of indices into
// one array of strings, with each slot's hash kept beside it so that most
// probes never touch a string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::tokenizer {

class TokenIndex {
 public:
  // Replaces the contents; a token given twice keeps its last id.
  void assign(std::vector<std::pair<std::string, int32_t>> entries);
  std::optional<int32_t> find(std::string_view token) const;
  std::size_t size() const { return tokens_.size(); }
  // The distinct tokens and their ids, in matching order.
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  static uint64_t hash(std::string_view token);
  // The slot holding `token`, or the empty slot where it would go.
  std::size_t probe(std::string_view token, uint64_t token_hash) const;

  std::vector<std::string> tokens_;
  std::vector<int32_t> ids_;
  std::vector<uint32_t> slots_;        // entry index + 1; 0 marks an empty slot
  std::vector<uint32_t> slot_hashes_;  // low bits of the hash of each slot's token
  std::size_t mask_ = 0;
};

}  // namespace kiln::tokenizer
