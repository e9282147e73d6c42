// A tokenizer.model tokenizer (SentencePiece), for checkpoints that ship no
// tokenizer.json (Baichuan, ChatGLM, InternLM).
//
// It follows HF transformers' slow SentencePiece tokenizers where they differ
// from plain SentencePiece: control tokens ("<s>", "</s>") written in the text
// are recognized; add_special_tokens adds BOS (and EOS) as tokenizer_config.json's
// add_bos_token (default true, as for Llama-style models) and add_eos_token
// (default false) say; decode writes control and unknown tokens literally
// unless skip_special_tokens drops them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kiln::tokenizer {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // `tokenizer_config` may not exist. Throws kiln::Error naming the file that cannot be read.
  static std::unique_ptr<SentencePieceTokenizer> from_files(const std::filesystem::path& model,
                                                            const std::filesystem::path& tokenizer_config);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  bool is_special(int32_t id) const override;
  int64_t vocab_size() const override;

 private:
  SentencePieceTokenizer();
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::vector<std::pair<std::string, int32_t>> control_pieces_;  // longest first
  std::string model_path_;
  bool add_bos_ = true;
  bool add_eos_ = false;
};

}  // namespace kiln::tokenizer
