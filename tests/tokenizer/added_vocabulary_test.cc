// Added-token matching, on the cases of HF tokenizers' AddedVocabulary tests:
// leftmost-longest matches, lstrip / rstrip / single_word, normalized tokens,
// and the ids HF assigns.
#include "tokenizer/added_vocabulary.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer_json_reader.h"
#include "tokenizer_test_support.h"

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using testing::added_token;

// Splits `text` on the raw tokens, normalizes the other pieces and splits them
// on the normalized tokens, as encode does; returns (piece, id or -1).
std::vector<std::pair<std::string, int32_t>> extract(const AddedVocabulary& vocabulary, const Normalizer* normalizer,
                                                     const std::string& text) {
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& raw : vocabulary.split(text, false)) {
    std::string piece = text.substr(raw.start, raw.end - raw.start);
    if (raw.token_id) {
      out.emplace_back(piece, *raw.token_id);
      continue;
    }
    if (normalizer) piece = normalizer->normalize(piece);
    for (const auto& segment : vocabulary.split(piece, true)) {
      out.emplace_back(piece.substr(segment.start, segment.end - segment.start), segment.token_id.value_or(-1));
    }
  }
  return out;
}

struct Fixture {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<AddedVocabulary> vocabulary;
};

Fixture make(const json& added_tokens, const json& vocab = json::object(), bool lowercase = true) {
  Fixture f;
  std::vector<std::pair<std::string, int32_t>> entries;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) entries.emplace_back(it.key(), it->get<int32_t>());
  const json model_config = {{"type", "BPE"}};
  f.model = BpeModel::from_json(JsonNode(model_config, "test.json"), entries, {});
  const json lowercase_config = {{"type", "Lowercase"}};
  if (lowercase) f.normalizer = make_normalizer(JsonNode(lowercase_config, "test.json"));
  f.vocabulary = std::make_unique<AddedVocabulary>(JsonNode(added_tokens, "test.json"), *f.model, f.normalizer.get());
  return f;
}

using Pieces = std::vector<std::pair<std::string, int32_t>>;

TEST(AddedVocabularyTest, ExtractsSpecialAndNormalTokens) {
  const Fixture f = make({added_token(0, "my", false), added_token(1, "name", false), added_token(2, "[CLS]", true),
                          added_token(3, "[SEP]", true)},
                         json::object(), /*lowercase=*/false);
  EXPECT_EQ(extract(*f.vocabulary, nullptr, "[CLS] My name is Anthony [SEP]"),
            (Pieces{{"[CLS]", 2}, {" My ", -1}, {"name", 1}, {" is Anthony ", -1}, {"[SEP]", 3}}));
}

TEST(AddedVocabularyTest, HonorsStripSingleWordAndNormalized) {
  const Fixture f = make({added_token(0, "my", false, /*normalized=*/true, /*lstrip=*/true, /*rstrip=*/true),
                          added_token(1, "name", false, /*normalized=*/true),
                          added_token(2, "ony", false, /*normalized=*/true, false, false, /*single_word=*/true),
                          added_token(3, "[CLS]", true), added_token(4, "[SEP]", true)});
  EXPECT_EQ(extract(*f.vocabulary, f.normalizer.get(), "[CLS] My name is Anthony [SEP]"),
            (Pieces{{"[CLS]", 3}, {" my ", 0}, {"name", 1}, {" is anthony ", -1}, {"[SEP]", 4}}));
}

TEST(AddedVocabularyTest, SingleWordNeedsWordBoundaries) {
  const Fixture f = make(json::array({added_token(0, "<mask>", false, false, false, false, /*single_word=*/true)}));
  EXPECT_EQ(extract(*f.vocabulary, f.normalizer.get(), "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            (Pieces{{"<mask>", 0}, {" my name ", -1}, {"<mask>", 0}, {" a<mask> <mask>ony ", -1}, {"<mask>", 0}}));
  // Punctuation is not a word character, a combining mark is.
  EXPECT_EQ(extract(*f.vocabulary, f.normalizer.get(), "<mask>, <mask>- \u25CC\u0330<mask>"),
            (Pieces{{"<mask>", 0}, {", ", -1}, {"<mask>", 0}, {"- \u25CC\u0330<mask>", -1}}));
}

TEST(AddedVocabularyTest, StripsUnicodeWhitespace) {
  const Fixture f = make(json::array({added_token(0, "<mask>", false, false, true, true, true)}));
  EXPECT_EQ(extract(*f.vocabulary, f.normalizer.get(), "Hi <mask> there\t<mask>\t<mask>\u2000"),
            (Pieces{{"hi", -1}, {" <mask> ", 0}, {"there", -1}, {"\t<mask>\t", 0}, {"<mask>\u2000", 0}}));
}

TEST(AddedVocabularyTest, PrefersTheLongestTokenAtTheLeftmostPosition) {
  const Fixture f = make({added_token(0, "<a>", true), added_token(1, "<a><b>", true), added_token(2, "a><b", true)});
  EXPECT_EQ(extract(*f.vocabulary, nullptr, "x<a><b><a>"), (Pieces{{"x", -1}, {"<a><b>", 1}, {"<a>", 0}}));
}

TEST(AddedVocabularyTest, AssignsIdsAsHuggingFaceDoes) {
  // A content the model has keeps the model's id; new ones follow the vocabulary.
  const Fixture f = make({added_token(0, "b", true), added_token(7, "<x>", true), added_token(9, "<y>", false)},
                         {{"a", 0}, {"b", 1}});
  EXPECT_EQ(f.vocabulary->token_to_id("b"), 1);
  EXPECT_EQ(f.vocabulary->token_to_id("<x>"), 2);
  EXPECT_EQ(f.vocabulary->token_to_id("<y>"), 3);
  EXPECT_TRUE(f.vocabulary->is_special_id(1));
  EXPECT_TRUE(f.vocabulary->is_special_id(2));
  EXPECT_FALSE(f.vocabulary->is_special_id(3));
  EXPECT_EQ(f.vocabulary->count_outside(*f.model), 2u);
}

TEST(AddedVocabularyTest, EmptyTextHasNoSegments) {
  const Fixture f = make(json::array({added_token(0, "<s>", true)}));
  EXPECT_TRUE(f.vocabulary->split("", false).empty());
}

}  // namespace
}  // namespace kiln::tokenizer
