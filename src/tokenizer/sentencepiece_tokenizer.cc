#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/json_node.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {

SentencePieceTokenizer::SentencePieceTokenizer()
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_files(
    const std::filesystem::path& model, const std::filesystem::path& tokenizer_config) {
  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer());
  tokenizer->model_path_ = model.string();
  const auto status = tokenizer->processor_->Load(model.string());
  if (!status.ok()) throw_error(model.string(), ": cannot load SentencePiece model: ", status.ToString());

  if (std::filesystem::exists(tokenizer_config)) {
    std::ifstream in(tokenizer_config, std::ios::binary);
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw_error(tokenizer_config.string(), ": malformed JSON: ", e.what());
    }
    const JsonNode config(json, tokenizer_config.string());
    tokenizer->add_bos_ = config.bool_or("add_bos_token", true);
    tokenizer->add_eos_ = config.bool_or("add_eos_token", false);
  }

  const int size = tokenizer->processor_->GetPieceSize();
  for (int id = 0; id < size; ++id) {
    if (tokenizer->processor_->IsControl(id)) {
      tokenizer->control_pieces_.emplace_back(tokenizer->processor_->IdToPiece(id), id);
    }
  }
  std::stable_sort(tokenizer->control_pieces_.begin(), tokenizer->control_pieces_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return tokenizer;
}

void SentencePieceTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  std::vector<int> pieces;
  const auto status = processor_->Encode(text, &pieces);
  if (!status.ok()) throw_error(model_path_, ": SentencePiece encoding failed: ", status.ToString());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = to_valid_utf8(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  if (add_special_tokens && add_bos_ && processor_->bos_id() >= 0) ids.push_back(processor_->bos_id());
  // Control tokens in the text become their ids; the text between them is encoded by SentencePiece.
  std::size_t plain_start = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto match = std::find_if(control_pieces_.begin(), control_pieces_.end(), [&](const auto& piece) {
      return !piece.first.empty() && text.substr(pos).starts_with(piece.first);
    });
    if (match == control_pieces_.end()) {
      ++pos;
      continue;
    }
    encode_plain(text.substr(plain_start, pos - plain_start), ids);
    ids.push_back(match->second);
    pos += match->first.size();
    plain_start = pos;
  }
  encode_plain(text.substr(plain_start), ids);
  if (add_special_tokens && add_eos_ && processor_->eos_id() >= 0) ids.push_back(processor_->eos_id());
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string text;
  std::vector<int> run;
  const auto flush = [&] {
    if (run.empty()) return;
    std::string decoded;
    const auto status = processor_->Decode(run, &decoded);
    if (!status.ok()) throw_error(model_path_, ": SentencePiece decoding failed: ", status.ToString());
    text += decoded;
    run.clear();
  };
  for (const int32_t id : ids) {
    if (id < 0 || id >= processor_->GetPieceSize()) continue;
    if (is_special(id)) {
      if (skip_special_tokens) continue;
      flush();
      text += processor_->IdToPiece(id);
      continue;
    }
    run.push_back(id);
  }
  flush();
  return text;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= processor_->GetPieceSize()) return {};
  return processor_->IdToPiece(id);
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  // PieceToId answers the unknown id for pieces it does not have.
  const int id = processor_->PieceToId(token);
  if (id < 0 || processor_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  if (id < 0 || id >= processor_->GetPieceSize()) return false;
  return processor_->IsControl(id) || processor_->IsUnknown(id);
}

int64_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace kiln::tokenizer
