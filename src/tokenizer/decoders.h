// Decoders of tokenizer.json ("decoder"): they turn the vocabulary strings of
// the ids being decoded back into text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_node.h"

namespace kiln::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings (HF's decode_chain); the text is their concatenation.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace and Sequence;
// nullptr for JSON null. Throws kiln::Error naming the file and the type for
// anything else.
std::unique_ptr<Decoder> make_decoder(const JsonNode& config);

}  // namespace kiln::tokenizer
