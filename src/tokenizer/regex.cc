#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <optional>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

using MatchDataPtr = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;

bool is_name_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Oniguruma's Unicode \s is the White_Space property; PCRE2's (with UCP) leaves
// out U+0085. Its \w is letters, marks, decimal digits and connector
// punctuation; PCRE2's is letters, all numbers and "_". Ruby's \h is a hex digit.
constexpr std::string_view kSpaceClass =
    R"(\t\n\x0B\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
constexpr std::string_view kWordClass = R"(\p{L}\p{M}\p{Nd}\p{Pc})";
constexpr std::string_view kHexClass = "0-9a-fA-F";

// Rewrites the class escapes whose meaning differs between Oniguruma (which
// HF tokenizers compiles tokenizer.json's patterns with) and PCRE2 into
// explicit classes. Inside brackets the positive classes are spliced in; the
// negated ones (\S, \W, \H) are kept there, as a class cannot hold a complement.
std::string translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[++i];
      std::string_view members;
      bool negated = false;
      switch (escaped) {
        case 's': members = kSpaceClass; break;
        case 'S':
          members = kSpaceClass;
          negated = true;
          break;
        case 'w': members = kWordClass; break;
        case 'W':
          members = kWordClass;
          negated = true;
          break;
        case 'h': members = kHexClass; break;
        case 'H':
          members = kHexClass;
          negated = true;
          break;
        default: break;
      }
      if (members.empty() || (in_class && negated)) {
        out += c;
        out += escaped;
      } else if (in_class) {
        out += members;
      } else {
        out += negated ? "[^" : "[";
        out += members;
        out += ']';
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' (or '^]') right after the opening bracket is a member, not the end.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside brackets.
      const std::size_t close = pattern.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(pattern.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // UTF + UCP: Unicode-aware classes as in Oniguruma. MULTILINE: Oniguruma's
  // Ruby syntax, which HF tokenizers uses, makes ^ and $ line anchors.
  const std::string translated = translate_oniguruma(pattern);
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error_code, &error_offset, nullptr);
  if (code_ == nullptr) {
    throw_error("invalid regex /", pattern, "/: ", pcre2_message(error_code));
  }
  // JIT makes matching several times faster; without it PCRE2 interprets.
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() { pcre2_code_free(code_); }

void Regex::for_each_match(std::string_view text, const std::function<void(pcre2_match_data*)>& on_match) const {
  MatchDataPtr data(pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t search_from = 0;
  std::optional<std::size_t> previous_end;
  while (search_from <= text.size()) {
    // The text was validated once up front; checking it again at every start
    // offset would make the scan quadratic.
    int rc = pcre2_match(code_, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc =
          pcre2_match(code_, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw_error("regex /", pattern_, "/ failed: ", pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const std::size_t start = ovector[0];
    const std::size_t end = ovector[1];
    if (start == end && previous_end == end) {
      // An empty match where the last one ended: step over one character.
      if (search_from >= text.size()) break;
      search_from += utf8_sequence_length(static_cast<unsigned char>(text[search_from]));
      continue;
    }
    on_match(data.get());
    search_from = end;
    previous_end = end;
  }
}

std::vector<Regex::Match> Regex::find_all(std::string_view text) const {
  std::vector<Match> matches;
  for_each_match(text, [&](pcre2_match_data* data) {
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    matches.push_back({ovector[0], ovector[1]});
  });
  return matches;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement, bool expand_groups) const {
  std::string out;
  std::size_t copied = 0;
  for_each_match(text, [&](pcre2_match_data* data) {
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    out.append(text.substr(copied, ovector[0] - copied));
    if (expand_groups) {
      expand(text, data, replacement, out);
    } else {
      out.append(replacement);
    }
    copied = ovector[1];
  });
  out.append(text.substr(copied));
  return out;
}

void Regex::expand(std::string_view text, pcre2_match_data* data, std::string_view replacement,
                   std::string& out) const {
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
  const uint32_t group_count = pcre2_get_ovector_count(data);
  const auto append_group = [&](std::string_view name) {
    int index = -1;
    if (name.find_first_not_of("0123456789") == std::string_view::npos) {
      index = name.size() < 6 ? std::stoi(std::string(name)) : -1;
    } else {
      index = pcre2_substring_number_from_name(code_, reinterpret_cast<PCRE2_SPTR>(std::string(name).c_str()));
    }
    if (index < 0 || static_cast<uint32_t>(index) >= group_count) return;  // unknown group: nothing
    const PCRE2_SIZE start = ovector[2 * index];
    const PCRE2_SIZE end = ovector[2 * index + 1];
    if (start == PCRE2_UNSET) return;
    out.append(text.substr(start, end - start));
  };
  std::size_t i = 0;
  while (i < replacement.size()) {
    const char c = replacement[i];
    if (c != '$' || i + 1 >= replacement.size()) {
      out += c;
      ++i;
      continue;
    }
    if (replacement[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (replacement[i + 1] == '{') {
      const std::size_t close = replacement.find('}', i + 2);
      if (close != std::string_view::npos && close > i + 2) {
        append_group(replacement.substr(i + 2, close - i - 2));
        i = close + 1;
        continue;
      }
      out += '$';
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    while (end < replacement.size() && is_name_character(replacement[end])) ++end;
    if (end == i + 1) {
      out += '$';
      ++i;
      continue;
    }
    append_group(replacement.substr(i + 1, end - i - 1));
    i = end;
  }
}

}  // namespace kiln::tokenizer
