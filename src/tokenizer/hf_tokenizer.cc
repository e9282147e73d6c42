#include "tokenizer/hf_tokenizer.h"

#include "core/error.h"
#include "tokenizer/text_splitting.h"
#include "tokenizer/tokenizer_json_reader.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {

std::unique_ptr<HfTokenizer> HfTokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  const std::string file = tokenizer_json.string();
  TokenizerJsonFile contents = read_tokenizer_json(tokenizer_json);
  const JsonNode root(contents.config, file);
  if (!contents.config.is_object()) root.fail("expected a JSON object");

  std::unique_ptr<HfTokenizer> tokenizer(new HfTokenizer());
  const JsonNode model = root["model"];
  // Files from before models carried a "type" are recognized by their merges.
  const std::string model_type = model.has("type") ? model.type() : model.has("merges") ? "BPE" : "";
  if (model_type != "BPE") model.fail("unsupported model type \"", model_type, "\" (kiln reads BPE models)");
  if (!model.has("vocab") || !model.has("merges")) model.fail("a BPE model needs \"vocab\" and \"merges\"");
  tokenizer->model_ = BpeModel::from_json(model, std::move(contents.vocab), contents.merges);
  if (root.has("normalizer")) tokenizer->normalizer_ = make_normalizer(root["normalizer"]);
  if (root.has("pre_tokenizer")) tokenizer->pre_tokenizer_ = make_pre_tokenizer(root["pre_tokenizer"]);
  if (root.has("post_processor")) tokenizer->post_processor_ = make_post_processor(root["post_processor"]);
  if (root.has("decoder")) tokenizer->decoder_ = make_decoder(root["decoder"]);
  const nlohmann::json no_added_tokens;
  tokenizer->added_ = std::make_unique<AddedVocabulary>(
      root.has("added_tokens") ? root["added_tokens"] : JsonNode(no_added_tokens, file), *tokenizer->model_,
      tokenizer->normalizer_.get());
  tokenizer->vocab_size_ =
      static_cast<int64_t>(tokenizer->model_->vocab_size() + tokenizer->added_->count_outside(*tokenizer->model_));
  return tokenizer;
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = to_valid_utf8(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  // Added tokens are found in the raw text first; each piece between them is
  // normalized on its own, searched for normalized added tokens, pre-tokenized
  // and encoded word by word.
  for (const AddedVocabulary::Segment& raw : added_->split(text, /*normalized=*/false)) {
    if (raw.token_id) {
      ids.push_back(*raw.token_id);
      continue;
    }
    std::string piece(text.substr(raw.start, raw.end - raw.start));
    if (normalizer_) piece = normalizer_->normalize(std::move(piece));
    for (const AddedVocabulary::Segment& segment : added_->split(piece, /*normalized=*/true)) {
      if (segment.token_id) {
        ids.push_back(*segment.token_id);
        continue;
      }
      std::vector<PreToken> words{
          {piece.substr(segment.start, segment.end - segment.start), raw.start == 0 && segment.start == 0}};
      if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(words);
      for (const PreToken& word : words) model_->tokenize(word.text, ids);
    }
  }
  if (post_processor_) post_processor_->process(ids, add_special_tokens);
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const std::string* token = token_string(id);
    if (token == nullptr || (skip_special_tokens && is_special(id))) continue;
    tokens.push_back(*token);
  }
  std::string text;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const std::string& token : tokens) text += token;
  } else {
    // Without a decoder HF joins the token strings with spaces.
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

const std::string* HfTokenizer::token_string(int32_t id) const {
  if (const AddedToken* added = added_->token_for_id(id)) return &added->content;
  return model_->id_to_token(id);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  const std::string* token = token_string(id);
  return token ? *token : std::string();
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (const auto id = added_->token_to_id(token)) return id;
  return model_->token_to_id(token);
}

}  // namespace kiln::tokenizer
