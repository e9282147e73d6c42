// The tokenizer interface the server and the CLI use, and streaming
// detokenization on top of it.
//
// Tokenizer::load reads a checkpoint's tokenizer: tokenizer.json (the
// HuggingFace `tokenizers` format; ids match what `tokenizers` produces) or,
// when there is none, tokenizer.model (SentencePiece).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // DIR/tokenizer.json (HF tokenizers format); else DIR/tokenizer.model
  // (SentencePiece, for Baichuan/ChatGLM/InternLM checkpoints that ship only
  // that). A path to either file works too. Throws kiln::Error naming the file
  // and what is unsupported (unknown model/normalizer/pre_tokenizer/decoder
  // type, malformed JSON, missing files).
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& dir);

  // Text to ids. add_special_tokens adds what the post-processor adds (BOS...);
  // special tokens written in the text are recognized either way. Text that is
  // not valid UTF-8 is repaired first (each broken sequence becomes U+FFFD).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // Ids to text. Ids outside the vocabulary are ignored, as HF does.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  // The vocabulary string ("▁Hello", "Ġworld"); empty for an unknown id.
  virtual std::string id_to_token(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // Whether decode(skip_special_tokens=true) drops this id.
  virtual bool is_special(int32_t id) const = 0;
  // Number of tokens, added tokens included.
  virtual int64_t vocab_size() const = 0;
};

// Streaming detokenization: text is emitted only when it is valid UTF-8 and
// stable (no half characters, no prefix that could still change);
// concatenating every push() and finish() equals decode(all ids).
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);
  // Adds one generated id; returns the text that became final (often empty).
  std::string push(int32_t id);
  // Returns whatever is still held back (an unfinished byte sequence decodes to U+FFFD).
  std::string finish();

 private:
  // Decodes ids_[begin, end).
  std::string decode_range(std::size_t begin, std::size_t end) const;
  // Emits the text of ids_[prefix_offset_, end) beyond the text already emitted for ids_[prefix_offset_, read_offset_).
  std::string emit_up_to_end(bool final);

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  // The ids decode keeps (skipped special tokens and unknown ids are left out,
  // so a window never starts with a token that the full decode would not see
  // in that place).
  std::vector<int32_t> ids_;
  std::size_t prefix_offset_ = 0;  // start of the window decoded for context
  std::size_t read_offset_ = 0;    // ids before this have had their text emitted
};

}  // namespace kiln::tokenizer
