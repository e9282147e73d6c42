// A tokenizer.json tokenizer: HF tokenizers' pipeline of added tokens,
// normalizer, pre-tokenizer, BPE model, post-processor and decoder.
#pragma once

#include <filesystem>
#include <memory>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace kiln::tokenizer {

class HfTokenizer final : public Tokenizer {
 public:
  // Throws kiln::Error naming the file and the field for malformed JSON and
  // unsupported components. Truncation and padding settings are ignored: a
  // server must not shorten or pad prompts behind the caller's back.
  static std::unique_ptr<HfTokenizer> from_file(const std::filesystem::path& tokenizer_json);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  bool is_special(int32_t id) const override { return added_->is_special_id(id); }
  int64_t vocab_size() const override { return vocab_size_; }

 private:
  HfTokenizer() = default;
  // The vocabulary string of an id (added tokens first), nullptr when unknown.
  const std::string* token_string(int32_t id) const;

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> added_;
  int64_t vocab_size_ = 0;
};

}  // namespace kiln::tokenizer
