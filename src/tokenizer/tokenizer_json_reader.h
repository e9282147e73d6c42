// Reads tokenizer.json in one pass. The BPE vocabulary and merges, which are
// nearly all of the file (128k tokens and 280k merges for Llama 3), go straight
// into flat arrays; the rest of the document becomes a JSON tree. Building a
// tree of the whole file and walking it again would double the load time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kiln::tokenizer {

struct TokenizerJsonFile {
  // The document, with "model.vocab" and "model.merges" left empty when they
  // were read into the arrays below.
  nlohmann::json config;
  // "model.vocab": token -> id, in file order.
  std::vector<std::pair<std::string, int32_t>> vocab;
  // "model.merges": (left, right) in rank order, from "left right" strings or
  // [left, right] pairs ("#version" lines of old files are skipped).
  std::vector<std::pair<std::string, std::string>> merges;
};

// Throws kiln::Error naming the file when it cannot be read, is not JSON, or
// has a malformed vocabulary or merge list.
TokenizerJsonFile read_tokenizer_json(const std::filesystem::path& path);

}  // namespace kiln::tokenizer
