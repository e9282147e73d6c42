#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace kiln::tokenizer {

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(dir)) {
    if (dir.extension() == ".json") return HfTokenizer::from_file(dir);
    return SentencePieceTokenizer::from_files(dir, dir.parent_path() / "tokenizer_config.json");
  }
  if (!fs::is_directory(dir)) throw_error(dir.string(), ": no such tokenizer directory");
  if (fs::exists(dir / "tokenizer.json")) return HfTokenizer::from_file(dir / "tokenizer.json");
  if (fs::exists(dir / "tokenizer.model")) {
    return SentencePieceTokenizer::from_files(dir / "tokenizer.model", dir / "tokenizer_config.json");
  }
  throw_error(dir.string(), ": no tokenizer.json or tokenizer.model");
}

}  // namespace kiln::tokenizer
