// Regular expressions of tokenizer files (Split pre-tokenizers, Replace
// normalizers and decoders). HF tokenizers compiles them with Oniguruma (Ruby
// syntax); kiln uses PCRE2 in UTF + UCP mode, where \p{L}, \p{N}, (?i:...) and
// look-around behave the same, rewrites \s, \w and \h to Oniguruma's classes,
// and makes ^ and $ line anchors as in Ruby.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace kiln::tokenizer {

class Regex {
 public:
  struct Match {
    std::size_t start;
    std::size_t end;
  };

  // Throws kiln::Error with PCRE2's message and the offset where compilation failed.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Every non-overlapping match, left to right, in valid UTF-8 `text`. An empty
  // match right where the previous match ended is skipped (Oniguruma's iteration).
  std::vector<Match> find_all(std::string_view text) const;

  // Replaces every match. In `replacement`, $N / ${N} / $name / ${name} expand
  // capture groups (missing groups expand to nothing) and $$ is a literal dollar,
  // as in Rust's regex crate; pass expand_groups=false for a literal replacement.
  std::string replace_all(std::string_view text, std::string_view replacement, bool expand_groups) const;

 private:
  // Calls on_match for each match of find_all's iteration, with the match data.
  void for_each_match(std::string_view text, const std::function<void(pcre2_real_match_data_8*)>& on_match) const;
  void expand(std::string_view text, pcre2_real_match_data_8* data, std::string_view replacement,
              std::string& out) const;

  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace kiln::tokenizer
