#include "tokenizer/pre_tokenizers.h"

#include <functional>
#include <string>
#include <utility>

#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/text_pattern.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

// Runs `split_one` on every piece, collecting what it appends.
void split_each(std::vector<PreToken>& pieces,
                const std::function<void(const PreToken&, std::vector<PreToken>&)>& split_one) {
  std::vector<PreToken> out;
  out.reserve(pieces.size());
  for (const PreToken& piece : pieces) split_one(piece, out);
  pieces = std::move(out);
}

SplitBehavior parse_behavior(const JsonNode& config, SplitBehavior fallback) {
  if (!config.has("behavior")) return fallback;
  const std::string name = config.string("behavior");
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  config["behavior"].fail("unsupported split behavior \"", name, "\"");
}

bool is_any_punctuation(char32_t c) { return is_ascii_punctuation(c) || is_punctuation(c); }

// GPT-2's word splitting, which ByteLevel applies when use_regex is set.
const Regex& gpt2_regex() {
  static const Regex regex(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return regex;
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      PreToken prefixed = piece;
      if (add_prefix_space_ && (prefixed.text.empty() || prefixed.text.front() != ' ')) {
        prefixed.text.insert(0, 1, ' ');
      }
      const std::size_t first = out.size();
      if (use_regex_) {
        const auto spans = spans_from_matches(prefixed.text.size(), gpt2_regex().find_all(prefixed.text));
        split_pre_token(prefixed, spans, SplitBehavior::kIsolated, out);
      } else if (!prefixed.text.empty()) {
        out.push_back(std::move(prefixed));
      }
      for (std::size_t i = first; i < out.size(); ++i) out[i].text = to_byte_level_chars(out[i].text);
    });
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(TextPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      auto spans = spans_from_matches(piece.text.size(), pattern_.find_all(piece.text));
      if (invert_) invert_spans(spans);
      split_pre_token(piece, spans, behavior_, out);
    });
  }

 private:
  TextPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// SentencePiece-style words: spaces become the replacement ("▁"), which may be
// prepended, and each word starts with its "▁".
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class PrependScheme { kAlways, kFirst, kNever };

  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    append_utf8(replacement_utf8_, replacement);
  }

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      PreToken rewritten{std::string(), piece.at_input_start};
      rewritten.text.reserve(piece.text.size() + replacement_utf8_.size());
      for (const char c : piece.text) {
        if (c == ' ') {
          rewritten.text += replacement_utf8_;
        } else {
          rewritten.text += c;
        }
      }
      const bool starts_with_replacement = rewritten.text.starts_with(replacement_utf8_);
      if (!starts_with_replacement &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_input_start))) {
        rewritten.text.insert(0, replacement_utf8_);
      }
      if (split_) {
        const auto spans = spans_from_predicate(rewritten.text, [&](char32_t c) { return c == replacement_; });
        split_pre_token(rewritten, spans, SplitBehavior::kMergedWithNext, out);
      } else if (!rewritten.text.empty()) {
        out.push_back(std::move(rewritten));
      }
    });
  }

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

// Splits where a character predicate holds (Digits, Punctuation, WhitespaceSplit).
class CharacterSplitPreTokenizer final : public PreTokenizer {
 public:
  CharacterSplitPreTokenizer(std::function<bool(char32_t)> is_delimiter, SplitBehavior behavior)
      : is_delimiter_(std::move(is_delimiter)), behavior_(behavior) {}

  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      split_pre_token(piece, spans_from_predicate(piece.text, is_delimiter_), behavior_, out);
    });
  }

 private:
  std::function<bool(char32_t)> is_delimiter_;
  SplitBehavior behavior_;
};

// Keeps the runs of word characters and the runs of other non-space
// characters; drops whitespace (the regex \w+|[^\w\s]+).
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_each(pieces, [&](const PreToken& piece, std::vector<PreToken>& out) {
      enum class Kind { kWord, kSpace, kOther };
      const auto kind_of = [](char32_t c) {
        if (is_word_character(c)) return Kind::kWord;
        return is_whitespace(c) ? Kind::kSpace : Kind::kOther;
      };
      const std::string& text = piece.text;
      std::size_t pos = 0;
      while (pos < text.size()) {
        const std::size_t start = pos;
        const Kind kind = kind_of(next_code_point(text, pos));
        while (pos < text.size()) {
          std::size_t next = pos;
          if (kind_of(next_code_point(text, next)) != kind) break;
          pos = next;
        }
        if (kind != Kind::kSpace) out.push_back({text.substr(start, pos - start), piece.at_input_start && start == 0});
      }
    });
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

std::unique_ptr<PreTokenizer> make_metaspace(const JsonNode& config) {
  const char32_t replacement = config.character("replacement");
  using Scheme = MetaspacePreTokenizer::PrependScheme;
  Scheme scheme = Scheme::kAlways;
  const std::string scheme_name = config.string_or("prepend_scheme", "always");
  if (scheme_name == "always") {
    scheme = Scheme::kAlways;
  } else if (scheme_name == "first") {
    scheme = Scheme::kFirst;
  } else if (scheme_name == "never") {
    scheme = Scheme::kNever;
  } else {
    config["prepend_scheme"].fail("unsupported prepend_scheme \"", scheme_name, "\"");
  }
  // Files written before prepend_scheme existed say add_prefix_space: false.
  if (!config.bool_or("add_prefix_space", true)) scheme = Scheme::kNever;
  return std::make_unique<MetaspacePreTokenizer>(replacement, scheme, config.bool_or("split", true));
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& config) {
  if (config.is_null()) return nullptr;
  const std::string type = config.type();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(config.bool_or("add_prefix_space", true),
                                                   config.bool_or("use_regex", true));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(TextPattern::from_json(config["pattern"]),
                                               parse_behavior(config, SplitBehavior::kIsolated),
                                               config.bool_or("invert", false));
  }
  if (type == "Metaspace") return make_metaspace(config);
  if (type == "Digits") {
    const auto behavior =
        config.bool_or("individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
    return std::make_unique<CharacterSplitPreTokenizer>(is_numeric, behavior);
  }
  if (type == "Punctuation") {
    return std::make_unique<CharacterSplitPreTokenizer>(is_any_punctuation,
                                                        parse_behavior(config, SplitBehavior::kIsolated));
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharacterSplitPreTokenizer>(is_whitespace, SplitBehavior::kRemoved);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(std::make_unique<CharacterSplitPreTokenizer>(is_whitespace, SplitBehavior::kRemoved));
    steps.push_back(std::make_unique<CharacterSplitPreTokenizer>(is_any_punctuation, SplitBehavior::kIsolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Sequence") {
    return std::make_unique<SequencePreTokenizer>(
        make_steps<PreTokenizer>(config["pretokenizers"], make_pre_tokenizer));
  }
  config.fail("unsupported pre_tokenizer type \"", type, "\"");
}

}  // namespace kiln::tokenizer
