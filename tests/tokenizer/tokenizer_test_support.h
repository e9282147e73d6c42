// Helpers for the tokenizer tests: temporary directories, tokenizer.json files
// assembled from JSON, and streaming detokenization of a whole id sequence.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "support/temp_dir.h"
#include "tokenizer/tokenizer.h"

namespace kiln::tokenizer::testing {

inline const std::filesystem::path kTokenizerFixtures = std::filesystem::path(KILN_FIXTURES) / "tokenizers";

using kiln::test::TempDir;
using kiln::test::write_file;

// A tokenizer.json with a BPE model over `vocab` and `merges`; `parts` adds or
// replaces top-level fields (normalizer, pre_tokenizer, added_tokens, ...) and
// `model_options` fields of the model.
inline nlohmann::json bpe_tokenizer_json(const nlohmann::json& vocab, const nlohmann::json& merges,
                                         const nlohmann::json& parts = nlohmann::json::object(),
                                         const nlohmann::json& model_options = nlohmann::json::object()) {
  nlohmann::json model = {
      {"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"vocab", vocab}, {"merges", merges}};
  if (!model_options.is_null()) model.update(model_options);
  nlohmann::json file = {{"version", "1.0"},
                         {"truncation", nullptr},
                         {"padding", nullptr},
                         {"added_tokens", nlohmann::json::array()},
                         {"normalizer", nullptr},
                         {"pre_tokenizer", nullptr},
                         {"post_processor", nullptr},
                         {"decoder", nullptr},
                         {"model", model}};
  if (!parts.is_null()) file.update(parts);
  return file;
}

// Writes `json` as DIR/tokenizer.json and loads DIR.
inline std::unique_ptr<Tokenizer> load_json(const TempDir& dir, const nlohmann::json& json) {
  write_file(dir / "tokenizer.json", json.dump());
  return Tokenizer::load(dir.path());
}

// An added_tokens entry.
inline nlohmann::json added_token(int id, std::string content, bool special, bool normalized = false,
                                  bool lstrip = false, bool rstrip = false, bool single_word = false) {
  return {{"id", id},         {"content", std::move(content)}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized},      {"special", special}};
}

// A fixture's tokenizer (llama2, llama3, qwen3, gpt2), loaded once per test process.
inline const Tokenizer& fixture_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& tokenizer = loaded[name];
  if (!tokenizer) tokenizer = Tokenizer::load(kTokenizerFixtures / name);
  return *tokenizer;
}

// Every id pushed through an IncrementalDetokenizer, then finish().
inline std::string streamed(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  IncrementalDetokenizer detokenizer(tokenizer, skip_special_tokens);
  std::string text;
  for (const int32_t id : ids) text += detokenizer.push(id);
  text += detokenizer.finish();
  return text;
}

}  // namespace kiln::tokenizer::testing
