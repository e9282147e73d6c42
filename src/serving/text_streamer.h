// Turns a job's tokens into the text a client sees: incremental
// detokenization (only stable, valid UTF-8 leaves), stop strings (the text
// ends before the first one, and text that might still become one is held
// back until it cannot), and per-token details for LMI's `details`.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kiln::serving {

struct TokenDetail {
  int32_t id = 0;
  std::string text;
  float logprob = 0;
  bool special = false;
};

class TextStreamer {
 public:
  TextStreamer(const tokenizer::Tokenizer& tokenizer, std::vector<std::string> stop_strings);
  // Adds a generated token; returns the text that became final. After a stop
  // string matched, stopped() is true and further tokens add nothing.
  std::string push(int32_t token, float logprob);
  // The text still held back (none after a stop).
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }  // everything emitted so far
  const std::vector<TokenDetail>& tokens() const { return details_; }

 private:
  std::string release(bool final);

  const tokenizer::Tokenizer& tokenizer_;
  tokenizer::IncrementalDetokenizer detokenizer_;
  std::vector<std::string> stops_;
  std::string pending_;  // stable text not yet emitted (may start a stop string)
  std::string text_;
  std::vector<TokenDetail> details_;
  bool stopped_ = false;
};

}  // namespace kiln::serving
