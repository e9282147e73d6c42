#include "tokenizer/decoders.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/text_pattern.h"
#include "tokenizer/unicode_text.h"

namespace kiln::tokenizer {
namespace {

// Maps every token's characters back to the bytes they stand for (a token with
// a character outside the alphabet, such as an added token, keeps its own
// bytes) and decodes all the bytes at once, lossily, into one token.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const std::size_t mark = bytes.size();
      bool all_mapped = true;
      std::size_t pos = 0;
      while (pos < token.size()) {
        const std::optional<uint8_t> byte = byte_level_byte(next_code_point(token, pos));
        if (!byte) {
          all_mapped = false;
          break;
        }
        bytes += static_cast<char>(*byte);
      }
      if (!all_mapped) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, to_valid_utf8(bytes));
  }
};

// "▁" back to spaces; in the first token (when the pre-tokenizer prepends one)
// every "▁" is dropped instead.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool drop_in_first_token) : drop_in_first_token_(drop_in_first_token) {
    append_utf8(replacement_, replacement);
  }

  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string_view substitute = i == 0 && drop_in_first_token_ ? "" : " ";
      std::string& token = tokens[i];
      std::string out;
      out.reserve(token.size());
      std::size_t copied = 0;
      for (std::size_t at = token.find(replacement_); at != std::string::npos; at = token.find(replacement_, at)) {
        out.append(token, copied, at - copied);
        out += substitute;
        at += replacement_.size();
        copied = at;
      }
      out.append(token, copied);
      token = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_in_first_token_;
};

// Runs of "<0xNN>" tokens become the bytes they name, or one U+FFFD per byte
// when the run is not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    const auto flush = [&] {
      if (run.empty()) return;
      if (is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (std::size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementCharacter);
      }
      run.clear();
    };
    for (std::string& token : tokens) {
      if (const auto byte = parse_byte_token(token)) {
        run += static_cast<char>(*byte);
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static std::optional<uint8_t> parse_byte_token(const std::string& token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    int value = 0;
    for (std::size_t i = 3; i < 5; ++i) {
      const char c = token[i];
      int digit = 0;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return std::nullopt;
      }
      value = value * 16 + digit;
    }
    return static_cast<uint8_t>(value);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string fused;
    for (const std::string& token : tokens) fused += token;
    tokens.assign(1, std::move(fused));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of a character from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, std::size_t start, std::size_t stop) : content_(content), start_(start), stop_(stop) {}

  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<std::size_t> char_starts;
      for (std::size_t pos = 0; pos < token.size();) {
        char_starts.push_back(pos);
        next_code_point(token, pos);
      }
      const std::size_t count = char_starts.size();
      const auto char_at = [&](std::size_t i) { return code_point_at(token, char_starts[i]); };
      std::size_t start_cut = 0;
      for (std::size_t i = 0; i < std::min(start_, count) && char_at(i) == content_; ++i) start_cut = i + 1;
      std::size_t stop_cut = count;
      for (std::size_t i = 0; i < std::min(stop_, count - start_cut); ++i) {
        const std::size_t index = count - i - 1;
        if (char_at(index) != content_) break;
        stop_cut = index;
      }
      const std::size_t begin = start_cut < count ? char_starts[start_cut] : token.size();
      const std::size_t end = stop_cut < count ? char_starts[stop_cut] : token.size();
      token = token.substr(begin, end - begin);
    }
  }

 private:
  char32_t content_;
  std::size_t start_;
  std::size_t stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(TextPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  TextPattern pattern_;
  std::string content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const JsonNode& config) {
  if (config.is_null()) return nullptr;
  const std::string type = config.type();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    const std::string scheme = config.string_or("prepend_scheme", "always");
    const bool prepends = scheme != "never" && config.bool_or("add_prefix_space", true);
    return std::make_unique<MetaspaceDecoder>(config.character("replacement"), prepends);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const int64_t start = config.int_or("start", 0);
    const int64_t stop = config.int_or("stop", 0);
    if (start < 0 || stop < 0) config.fail("Strip start and stop must not be negative");
    return std::make_unique<StripDecoder>(config.character("content"), static_cast<std::size_t>(start),
                                          static_cast<std::size_t>(stop));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(TextPattern::from_json(config["pattern"]), config.string("content"));
  }
  if (type == "Sequence") {
    return std::make_unique<SequenceDecoder>(make_steps<Decoder>(config["decoders"], make_decoder));
  }
  config.fail("unsupported decoder type \"", type, "\"");
}

}  // namespace kiln::tokenizer
