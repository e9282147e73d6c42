#include "tokenizer/token_index.h"

#include <functional>

namespace kiln::tokenizer {

uint64_t TokenIndex::hash(std::string_view token) { return std::hash<std::string_view>{}(token); }

std::size_t TokenIndex::probe(std::string_view token, uint64_t token_hash) const {
  const auto short_hash = static_cast<uint32_t>(token_hash);
  for (std::size_t s = token_hash & mask_;; s = (s + 1) & mask_) {
    const uint32_t entry = slots_[s];
    if (entry == 0) return s;
    if (slot_hashes_[s] == short_hash && tokens_[entry - 1] == token) return s;
  }
}

void TokenIndex::assign(std::vector<std::pair<std::string, int32_t>> entries) {
  tokens_.clear();
  ids_.clear();
  tokens_.reserve(entries.size());
  ids_.reserve(entries.size());
  std::size_t capacity = 16;
  while (capacity < entries.size() * 2) capacity *= 2;  // load factor at most 1/2
  slots_.assign(capacity, 0);
  slot_hashes_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (auto& [token, id] : entries) {
    const uint64_t h = hash(token);
    const std::size_t s = probe(token, h);
    if (slots_[s] != 0) {
      ids_[slots_[s] - 1] = id;
      continue;
    }
    tokens_.push_back(std::move(token));
    ids_.push_back(id);
    slots_[s] = static_cast<uint32_t>(tokens_.size());
    slot_hashes_[s] = static_cast<uint32_t>(h);
  }
}

std::optional<int32_t> TokenIndex::find(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  const uint32_t entry = slots_[probe(token, hash(token))];
  if (entry == 0) return std::nullopt;
  return ids_[entry - 1];
}

}  // namespace kiln::tokenizer
