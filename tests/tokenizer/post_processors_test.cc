// Post-processors of tokenizer.json.
#include "tokenizer/post_processors.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

Ids process(const json& config, Ids ids, bool add_special_tokens) {
  make_post_processor(JsonNode(config, "test.json"))->process(ids, add_special_tokens);
  return ids;
}

TEST(PostProcessorsTest, TemplateProcessingPieces) {
  const json config = {{"type", "TemplateProcessing"},
                       {"single",
                        {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                         {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                         {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                       {"special_tokens",
                        {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}},
                         {"</s>", {{"id", "</s>"}, {"ids", {2, 3}}, {"tokens", {"</", "s>"}}}}}}};
  EXPECT_EQ(process(config, {7, 8}, true), (Ids{1, 7, 8, 2, 3}));
  EXPECT_EQ(process(config, {7, 8}, false), (Ids{7, 8}));
  EXPECT_EQ(process(config, {}, true), (Ids{1, 2, 3}));
}

TEST(PostProcessorsTest, TemplateProcessingStrings) {
  const json config = {{"type", "TemplateProcessing"},
                       {"single", {"[CLS]:0", "$A:0", "[SEP]:0"}},
                       {"special_tokens",
                        {{"[CLS]", {{"id", "[CLS]"}, {"ids", {101}}, {"tokens", {"[CLS]"}}}},
                         {"[SEP]", {{"id", "[SEP]"}, {"ids", {102}}, {"tokens", {"[SEP]"}}}}}}};
  EXPECT_EQ(process(config, {5}, true), (Ids{101, 5, 102}));
}

TEST(PostProcessorsTest, RobertaBertByteLevelSequence) {
  EXPECT_EQ(process(json{{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 0}}}, {5}, true),
            (Ids{0, 5, 2}));
  EXPECT_EQ(process(json{{"type", "BertProcessing"}, {"sep", {"[SEP]", 102}}, {"cls", {"[CLS]", 101}}}, {5}, false),
            (Ids{5}));
  EXPECT_EQ(process(json{{"type", "ByteLevel"}, {"add_prefix_space", true}}, {5}, true), (Ids{5}));
  const json sequence = {
      {"type", "Sequence"},
      {"processors",
       {{{"type", "ByteLevel"}},
        {{"type", "TemplateProcessing"},
         {"single", {"<|begin_of_text|>", "$A"}},
         {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {128000}}}}}}}}}};
  EXPECT_EQ(process(sequence, {5}, true), (Ids{128000, 5}));
}

}  // namespace
}  // namespace kiln::tokenizer
