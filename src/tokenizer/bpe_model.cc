#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <queue>
#include <utility>

#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {

void BpeModel::MergeTable::reserve(std::size_t count) {
  std::size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;  // load factor at most 1/2
  if (capacity > slots_.size()) rehash(capacity);
}

void BpeModel::MergeTable::rehash(std::size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  shift_ = 64 - __builtin_ctzll(capacity);
  slots_.assign(capacity, Slot{kEmpty, Merge{0, 0}});
  size_ = 0;
  for (const Slot& entry : old) {
    if (entry.key == kEmpty) continue;
    std::size_t s = slot(entry.key);
    while (slots_[s].key != kEmpty) s = (s + 1) & (capacity - 1);
    slots_[s] = entry;
    ++size_;
  }
}

void BpeModel::MergeTable::insert_or_assign(int32_t left, int32_t right, Merge merge) {
  if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  const uint64_t k = key(left, right);
  const std::size_t mask = slots_.size() - 1;
  std::size_t s = slot(k);
  while (slots_[s].key != kEmpty && slots_[s].key != k) s = (s + 1) & mask;
  if (slots_[s].key == kEmpty) ++size_;
  slots_[s] = Slot{k, merge};
}

const BpeModel::Merge* BpeModel::MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  const uint64_t k = key(left, right);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t s = slot(k);; s = (s + 1) & mask) {
    if (slots_[s].key == k) return &slots_[s].merge;
    if (slots_[s].key == kEmpty) return nullptr;
  }
}

std::unique_ptr<BpeModel> BpeModel::from_json(const JsonNode& config,
                                              std::vector<std::pair<std::string, int32_t>> vocab,
                                              const std::vector<std::pair<std::string, std::string>>& merges) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  model->source_ = config.location();
  if (config.has("dropout")) {
    const JsonNode dropout = config["dropout"];
    if (!dropout.json().is_number() || dropout.json().get<double>() != 0.0) {
      dropout.fail("BPE dropout is not supported (it makes encoding random); it must be null");
    }
  }
  if (config.has("unk_token")) model->unk_token_ = config.string("unk_token");
  model->continuing_subword_prefix_ = config.string_or("continuing_subword_prefix", "");
  model->end_of_word_suffix_ = config.string_or("end_of_word_suffix", "");
  model->fuse_unk_ = config.bool_or("fuse_unk", false);
  model->byte_fallback_ = config.bool_or("byte_fallback", false);
  model->ignore_merges_ = config.bool_or("ignore_merges", false);

  model->vocab_.assign(std::move(vocab));
  int32_t max_id = -1;
  // Ids index a table, so they are bounded: real vocabularies have at most a few hundred thousand tokens.
  constexpr int32_t kMaxTokenId = (1 << 24) - 1;
  for (const int32_t id : model->vocab_.ids()) {
    if (id < 0 || id > kMaxTokenId) config.fail("vocab: token id ", id, " is outside 0..", kMaxTokenId);
    max_id = std::max(max_id, id);
  }
  model->token_of_id_.assign(static_cast<std::size_t>(max_id + 1), nullptr);
  for (std::size_t i = 0; i < model->vocab_.size(); ++i) {
    model->token_of_id_[static_cast<std::size_t>(model->vocab_.ids()[i])] = &model->vocab_.tokens()[i];
  }
  if (model->unk_token_) model->unk_id_ = model->token_to_id(*model->unk_token_);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    model->byte_token_ids_[b] = model->token_to_id(name).value_or(-1);
  }

  // The merged token is left + right without right's continuing-subword prefix.
  model->merges_.reserve(merges.size());
  const std::size_t prefix_length = model->continuing_subword_prefix_.size();
  std::string merged;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto left_id = model->token_to_id(left);
    const auto right_id = model->token_to_id(right);
    if (right.size() < prefix_length) {
      config.fail("merges[", rank, "]: \"", right, "\" is shorter than the continuing_subword_prefix");
    }
    merged.assign(left);
    merged.append(right, prefix_length);
    const auto merged_id = model->token_to_id(merged);
    if (!left_id || !right_id || !merged_id) {
      config.fail("merges[", rank, "]: merging \"", left, "\" and \"", right, "\" needs \"",
                  !left_id    ? left
                  : !right_id ? right
                              : merged,
                  "\", which is not in the vocabulary");
    }
    // Like HF's map from pairs, a repeated pair keeps its last rank.
    model->merges_.insert_or_assign(*left_id, *right_id, Merge{static_cast<int32_t>(rank), *merged_id});
  }
  return model;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const { return vocab_.find(token); }

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= token_of_id_.size()) return nullptr;
  return token_of_id_[static_cast<std::size_t>(id)];
}

void BpeModel::check_unknown_id() const {
  if (!unk_id_) throw_error(source_, ": unk_token \"", *unk_token_, "\" is not in the vocabulary");
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // A word the vocabulary already has is taken whole (Llama 3, Qwen).
    if (const auto id = token_to_id(word)) {
      ids.push_back(*id);
      return;
    }
  }
  // One symbol per character (with the prefix/suffix decorations), unknown
  // characters as byte tokens, as the unknown token, or dropped.
  std::vector<int32_t> symbol_ids;
  std::vector<uint32_t> symbol_lengths;
  symbol_ids.reserve(word.size());
  symbol_lengths.reserve(word.size());
  // An unknown-token symbol not yet added, so that fuse_unk can grow it.
  bool has_pending_unknown = false;
  uint32_t pending_unknown_length = 0;
  const auto add = [&](int32_t id, uint32_t length) {
    symbol_ids.push_back(id);
    symbol_lengths.push_back(length);
  };
  const auto add_pending_unknown = [&] {
    if (has_pending_unknown) add(*unk_id_, pending_unknown_length);
    has_pending_unknown = false;
  };
  std::string decorated;
  for (std::size_t pos = 0; pos < word.size();) {
    const std::size_t start = pos;
    pos = std::min(word.size(), pos + utf8_sequence_length(static_cast<unsigned char>(word[pos])));
    std::string_view piece = word.substr(start, pos - start);
    const auto byte_length = static_cast<uint32_t>(piece.size());
    const bool decorate_prefix = start != 0 && !continuing_subword_prefix_.empty();
    const bool decorate_suffix = pos == word.size() && !end_of_word_suffix_.empty();
    if (decorate_prefix || decorate_suffix) {
      decorated.assign(decorate_prefix ? continuing_subword_prefix_ : "");
      decorated += piece;
      if (decorate_suffix) decorated += end_of_word_suffix_;
      piece = decorated;
    }
    if (const auto id = token_to_id(piece)) {
      add_pending_unknown();
      add(*id, byte_length);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes_known = true;
      for (const char b : piece) all_bytes_known = all_bytes_known && byte_token_ids_[static_cast<uint8_t>(b)] >= 0;
      if (all_bytes_known) {
        for (const char b : piece) add(byte_token_ids_[static_cast<uint8_t>(b)], 1);
        continue;
      }
    }
    if (unk_token_) {
      if (has_pending_unknown && fuse_unk_) {
        pending_unknown_length += byte_length;
      } else {
        add_pending_unknown();
        check_unknown_id();
        has_pending_unknown = true;
        pending_unknown_length = byte_length;
      }
    }
  }
  add_pending_unknown();
  merge_symbols(symbol_ids, symbol_lengths);
  for (std::size_t i = 0; i < symbol_ids.size(); ++i) {
    if (symbol_lengths[i] != 0) ids.push_back(symbol_ids[i]);
  }
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbol_ids, std::vector<uint32_t>& symbol_lengths) const {
  const auto count = static_cast<int32_t>(symbol_ids.size());
  if (count < 2) return;
  // Doubly linked list over the symbols; a merged-away symbol gets length 0.
  std::vector<int32_t> prev(static_cast<std::size_t>(count));
  std::vector<int32_t> next(static_cast<std::size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  // Lowest rank first, then leftmost.
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  for (int32_t i = 0; i + 1 < count; ++i) {
    if (const Merge* m = merges_.find(symbol_ids[i], symbol_ids[i + 1])) queue.push({m->rank, i, m->new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t pos = top.pos;
    if (symbol_lengths[pos] == 0 || next[pos] == -1) continue;
    const int32_t right = next[pos];
    // Skip entries made stale by earlier merges.
    const Merge* current = merges_.find(symbol_ids[pos], symbol_ids[right]);
    if (current == nullptr || current->new_id != top.new_id) continue;

    symbol_ids[pos] = top.new_id;
    symbol_lengths[pos] += symbol_lengths[right];
    symbol_lengths[right] = 0;
    next[pos] = next[right];
    if (next[right] != -1) prev[next[right]] = pos;

    if (prev[pos] >= 0) {
      if (const Merge* m = merges_.find(symbol_ids[prev[pos]], symbol_ids[pos])) {
        queue.push({m->rank, prev[pos], m->new_id});
      }
    }
    if (next[pos] != -1) {
      if (const Merge* m = merges_.find(symbol_ids[pos], symbol_ids[next[pos]])) queue.push({m->rank, pos, m->new_id});
    }
  }
}

}  // namespace kiln::tokenizer
