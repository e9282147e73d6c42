// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): they cut each normalized
// piece into the words the model encodes one at a time, and may rewrite them
// (ByteLevel's byte alphabet, Metaspace's "▁").
#pragma once

#include <memory>
#include <vector>

#include "tokenizer/json_node.h"
#include "tokenizer/text_splitting.h"

namespace kiln::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by its sub-pieces, in order; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};

// ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit,
// Punctuation, BertPreTokenizer and Sequence; nullptr for JSON null. Throws
// kiln::Error naming the file and the type for anything else.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& config);

}  // namespace kiln::tokenizer
