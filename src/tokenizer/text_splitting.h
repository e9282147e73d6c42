// Splitting pieces of text the way HF tokenizers' NormalizedString::split does:
// a pattern yields spans covering the text (matches and the gaps between them),
// a delimiter behavior decides what becomes of the matches, empty pieces vanish.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace kiln::tokenizer {

// One piece of the text on its way to the model (HF's pre-tokenized "split").
struct PreToken {
  std::string text;
  // Whether the piece begins at offset 0 of the encoded input; Metaspace's
  // prepend_scheme "first" adds its space only there.
  bool at_input_start = false;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  std::size_t start;
  std::size_t end;
  bool is_match;
};

// Spans covering a text of `text_size` bytes: each match and each gap between.
std::vector<Span> spans_from_matches(std::size_t text_size, const std::vector<Regex::Match>& matches);
// Spans where every character satisfying `is_delimiter` is a match of its own.
std::vector<Span> spans_from_predicate(std::string_view text, const std::function<bool(char32_t)>& is_delimiter);
// Swaps matches and gaps (the Split pre-tokenizer's "invert").
void invert_spans(std::vector<Span>& spans);

// Cuts `piece` along `spans` according to `behavior` and appends the non-empty pieces to `out`.
void split_pre_token(const PreToken& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                     std::vector<PreToken>& out);

}  // namespace kiln::tokenizer
