// Streaming detokenization as vLLM and TGI do it: decode a window of recent ids
// twice, without and with the new ones, and emit the difference once it is final.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

// "<0xNN>": a byte-fallback token. A run of them decodes to text only when the
// whole run is valid UTF-8 (else to one U+FFFD per byte), so a later byte token
// can still change the text of earlier ones.
bool is_byte_token(const std::string& token) {
  const auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  return token.size() == 6 && token.starts_with("<0x") && token.back() == '>' && is_hex(token[3]) && is_hex(token[4]);
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::decode_range(std::size_t begin, std::size_t end) const {
  const std::vector<int32_t> window(ids_.begin() + static_cast<std::ptrdiff_t>(begin),
                                    ids_.begin() + static_cast<std::ptrdiff_t>(end));
  return tokenizer_.decode(window, skip_special_tokens_);
}

std::string IncrementalDetokenizer::push(int32_t id) {
  // Ids that decode drops are left out of the window altogether: were a window
  // to start with one, decoders that strip the first token's leading space
  // (Metaspace, Strip) would strip the wrong token.
  if (skip_special_tokens_ && tokenizer_.is_special(id)) return {};
  const std::string token = tokenizer_.id_to_token(id);
  if (token.empty()) return {};
  ids_.push_back(id);
  if (is_byte_token(token)) return {};  // wait for the end of the byte run
  return emit_up_to_end(/*final=*/false);
}

std::string IncrementalDetokenizer::finish() { return emit_up_to_end(/*final=*/true); }

std::string IncrementalDetokenizer::emit_up_to_end(bool final) {
  if (read_offset_ == ids_.size()) return {};
  const std::string prefix_text = decode_range(prefix_offset_, read_offset_);
  const std::string new_text = decode_range(prefix_offset_, ids_.size());
  // Hold back text that is not final: nothing new yet, a trailing U+FFFD (a
  // character whose bytes are still arriving), or an earlier part that changed.
  const bool grew = new_text.size() > prefix_text.size() && new_text.starts_with(prefix_text);
  if (!final && (!grew || new_text.ends_with(kReplacementCharacter))) return {};
  std::string emitted = grew ? new_text.substr(prefix_text.size()) : std::string();
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return emitted;
}

}  // namespace kiln::tokenizer
