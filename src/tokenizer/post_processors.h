// Post-processors of tokenizer.json ("post_processor"): what encode adds around
// the ids when add_special_tokens is set (BOS, CLS/SEP).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tokenizer/json_node.h"

namespace kiln::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

// TemplateProcessing (its "single" template), RobertaProcessing,
// BertProcessing, ByteLevel (ids unchanged) and Sequence; nullptr for JSON
// null. Throws kiln::Error naming the file and the type for anything else.
std::unique_ptr<PostProcessor> make_post_processor(const JsonNode& config);

}  // namespace kiln::tokenizer
