// Normalizers of tokenizer.json ("normalizer"): text rewrites applied to each
// piece of the input between added tokens, before pre-tokenization.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/json_node.h"

namespace kiln::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, ByteLevel and
// Sequence; nullptr for JSON null. Throws kiln::Error naming the file and the
// type for anything else.
std::unique_ptr<Normalizer> make_normalizer(const JsonNode& config);

}  // namespace kiln::tokenizer
