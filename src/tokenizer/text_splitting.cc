#include "tokenizer/text_splitting.h"

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {

std::vector<Span> spans_from_matches(std::size_t text_size, const std::vector<Regex::Match>& matches) {
  if (text_size == 0) return {{0, 0, false}};
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  std::size_t previous = 0;
  for (const Regex::Match& m : matches) {
    if (previous != m.start) spans.push_back({previous, m.start, false});
    spans.push_back({m.start, m.end, true});
    previous = m.end;
  }
  if (previous != text_size) spans.push_back({previous, text_size, false});
  return spans;
}

std::vector<Span> spans_from_predicate(std::string_view text, const std::function<bool(char32_t)>& is_delimiter) {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Span> spans;
  std::size_t gap_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t c = next_code_point(text, pos);
    if (!is_delimiter(c)) continue;
    if (gap_start < start) spans.push_back({gap_start, start, false});
    spans.push_back({start, pos, true});
    gap_start = pos;
  }
  if (gap_start < text.size()) spans.push_back({gap_start, text.size(), false});
  return spans;
}

void invert_spans(std::vector<Span>& spans) {
  for (Span& span : spans) span.is_match = !span.is_match;
}

void split_pre_token(const PreToken& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                     std::vector<PreToken>& out) {
  // Ranges to keep, computed as HF's fold over (offsets, is_match) does.
  struct Range {
    std::size_t start;
    std::size_t end;
  };
  std::vector<Range> ranges;
  ranges.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) ranges.push_back({s.start, s.end});
      break;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) ranges.push_back({s.start, s.end});
      }
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !ranges.empty()) {
          ranges.back().end = s.end;
        } else {
          ranges.push_back({s.start, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !ranges.empty()) {
          ranges.back().end = s.end;
        } else {
          ranges.push_back({s.start, s.end});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // The mirror image: walk from the end and glue each match to what follows it.
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !ranges.empty()) {
          ranges.back().start = it->start;
        } else {
          ranges.push_back({it->start, it->end});
        }
        previous_match = it->is_match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    }
  }
  for (const Range& r : ranges) {
    if (r.end == r.start) continue;
    out.push_back({piece.text.substr(r.start, r.end - r.start), piece.at_input_start && r.start == 0});
  }
}

}  // namespace kiln::tokenizer
