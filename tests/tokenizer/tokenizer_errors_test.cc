// Tokenizer files kiln cannot use are refused with a kiln::Error that names
// the file and what is wrong with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using testing::bpe_tokenizer_json;
using testing::TempDir;
using testing::write_file;

// The message of the kiln::Error that loading DIR throws.
std::string load_error(const std::filesystem::path& dir) {
  try {
    Tokenizer::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading " << dir << " did not fail";
  return {};
}

std::string load_error(const TempDir& dir, const json& tokenizer_json) {
  write_file(dir / "tokenizer.json", tokenizer_json.dump());
  return load_error(dir.path());
}

const json kVocab = {{"a", 0}, {"b", 1}, {"ab", 2}};

TEST(TokenizerErrorsTest, MissingDirectoryOrFiles) {
  TempDir dir;
  EXPECT_THAT(load_error(dir / "nowhere"), ::testing::HasSubstr("nowhere: no such tokenizer directory"));
  EXPECT_THAT(load_error(dir.path()), ::testing::HasSubstr("no tokenizer.json or tokenizer.model"));
}

TEST(TokenizerErrorsTest, MalformedJson) {
  TempDir dir;
  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0,)");
  const std::string message = load_error(dir.path());
  EXPECT_THAT(message, ::testing::HasSubstr((dir / "tokenizer.json").string()));
  EXPECT_THAT(message, ::testing::HasSubstr("malformed JSON"));
}

TEST(TokenizerErrorsTest, UnsupportedModelType) {
  TempDir dir;
  json file = bpe_tokenizer_json(kVocab, json::array());
  file["model"]["type"] = "WordPiece";
  const std::string message = load_error(dir, file);
  EXPECT_THAT(message, ::testing::HasSubstr((dir / "tokenizer.json").string() + ": model"));
  EXPECT_THAT(message, ::testing::HasSubstr("unsupported model type \"WordPiece\""));
}

TEST(TokenizerErrorsTest, UnsupportedComponents) {
  TempDir dir;
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a b"}, {{"normalizer", {{"type", "Precompiled"}}}})),
              ::testing::HasSubstr("normalizer: unsupported normalizer type \"Precompiled\""));
  EXPECT_THAT(
      load_error(dir,
                 bpe_tokenizer_json(
                     kVocab, {"a b"},
                     {{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "UnicodeScripts"}}}}}}})),
      ::testing::HasSubstr("pre_tokenizer.pretokenizers[0]: unsupported pre_tokenizer type \"UnicodeScripts\""));
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a b"}, {{"decoder", {{"type", "WordPiece"}}}})),
              ::testing::HasSubstr("decoder: unsupported decoder type \"WordPiece\""));
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a b"}, {{"post_processor", {{"type", "Magic"}}}})),
              ::testing::HasSubstr("post_processor: unsupported post_processor type \"Magic\""));
}

TEST(TokenizerErrorsTest, BadModelContents) {
  TempDir dir;
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a c"})),
              ::testing::HasSubstr("merges[0]: merging \"a\" and \"c\" needs \"c\", which is not in the vocabulary"));
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a b c"})),
              ::testing::HasSubstr("model.merges[0]: expected \"left right\""));
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json({{"a", "zero"}}, json::array())),
              ::testing::HasSubstr("model.vocab: token \"a\" has no valid id"));
  EXPECT_THAT(load_error(dir, bpe_tokenizer_json(kVocab, {"a b"}, {}, {{"dropout", 0.1}})),
              ::testing::HasSubstr("model.dropout: BPE dropout is not supported"));
  json no_merges = bpe_tokenizer_json(kVocab, json::array());
  no_merges["model"].erase("merges");
  EXPECT_THAT(load_error(dir, no_merges), ::testing::HasSubstr("a BPE model needs \"vocab\" and \"merges\""));
}

TEST(TokenizerErrorsTest, BadRegexNamesTheField) {
  TempDir dir;
  const json split = {{"type", "Split"}, {"pattern", {{"Regex", "([a-z]"}}}, {"behavior", "Isolated"}};
  const std::string message = load_error(dir, bpe_tokenizer_json(kVocab, {"a b"}, {{"pre_tokenizer", split}}));
  EXPECT_THAT(message, ::testing::HasSubstr("pre_tokenizer.pattern.Regex: invalid regex /([a-z]/"));
}

}  // namespace
}  // namespace kiln::tokenizer
