// The BPE model of tokenizer.json: a vocabulary and ranked merges, applied to
// one pre-tokenized word at a time exactly as HF tokenizers' BPE does
// (lowest-rank pair first, leftmost among equals; byte fallback, unknown-token
// fusing, ignore_merges, continuing-subword prefix and end-of-word suffix).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/json_node.h"
#include "tokenizer/token_index.h"

namespace kiln::tokenizer {

class BpeModel {
 public:
  BpeModel(const BpeModel&) = delete;  // token_of_id_ points into vocab_
  BpeModel& operator=(const BpeModel&) = delete;

  // Builds the model from tokenizer.json's "model" (type BPE) options and its
  // vocabulary and merges (read apart, see tokenizer_json_reader.h). Throws
  // kiln::Error naming the file and the field for anything unsupported
  // (dropout, merges outside the vocabulary).
  static std::unique_ptr<BpeModel> from_json(const JsonNode& model, std::vector<std::pair<std::string, int32_t>> vocab,
                                             const std::vector<std::pair<std::string, std::string>>& merges);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr for an id the vocabulary does not have.
  const std::string* id_to_token(int32_t id) const;
  // The number of vocabulary entries.
  std::size_t vocab_size() const { return vocab_.size(); }

 private:
  BpeModel() = default;

  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // Open-addressing hash table from a (left id, right id) pair to its merge;
  // merges are probed for every adjacent pair of every word, so this is hot.
  class MergeTable {
   public:
    void reserve(std::size_t count);
    void insert_or_assign(int32_t left, int32_t right, Merge merge);
    const Merge* find(int32_t left, int32_t right) const;

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static uint64_t key(int32_t left, int32_t right) {
      return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    }
    std::size_t slot(uint64_t k) const { return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }
    void rehash(std::size_t capacity);

    // Key and merge side by side: a lookup costs one cache miss.
    struct Slot {
      uint64_t key;
      Merge merge;
    };
    std::vector<Slot> slots_;
    std::size_t size_ = 0;
    int shift_ = 64;
  };

  // The symbols of one word after the merges (HF's Word::merge_all).
  void merge_symbols(std::vector<int32_t>& symbol_ids, std::vector<uint32_t>& symbol_lengths) const;
  // Throws (as HF does when it needs the unknown token) if unk_token is not in the vocabulary.
  void check_unknown_id() const;

  TokenIndex vocab_;
  std::vector<const std::string*> token_of_id_;  // points into vocab_'s tokens
  MergeTable merges_;
  std::optional<std::string> unk_token_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_token_ids_{};  // id of "<0xNN>", -1 when absent
  std::string source_;                         // the file, for errors at encode time
};

}  // namespace kiln::tokenizer
