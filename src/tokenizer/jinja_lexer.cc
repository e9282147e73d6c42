#include "tokenizer/jinja_lexer.h"

#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja_unicode.h"

namespace kiln::tokenizer::jinja {

void throw_syntax_error(int line, std::string_view message) {
  throw_error("chat template syntax error at line ", line, ": ", message);
}

namespace {

// Jinja2 splits lines on \r\n, \r and \n and rejoins them with \n, dropping one trailing newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The code point that ends at `end` (exclusive) and where it starts.
char32_t code_point_before(std::string_view text, std::size_t end, std::size_t& start) {
  start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  const std::u32string decoded = decode_utf8(text.substr(start, end - start));
  return decoded.size() == 1 ? decoded[0] : static_cast<char32_t>(static_cast<unsigned char>(text[end - 1]));
}

// Python's str.rstrip(): the length of `text` without trailing Unicode whitespace.
std::size_t rstripped_length(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = 0;
    if (!is_space(code_point_before(text, end, start))) break;
    end = start;
  }
  return end;
}

bool all_whitespace(std::string_view text) { return rstripped_length(text) == 0; }

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit_char(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's unicode-escape decoding of a string literal's body; unknown escapes keep their backslash.
std::string unescape(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 >= body.size()) {
      out += body[i];
      continue;
    }
    const char c = body[++i];
    switch (c) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        const std::size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        char32_t code_point = 0;
        for (std::size_t k = 1; k <= digits; ++k) {
          const int v = i + k < body.size() ? hex_value(body[i + k]) : -1;
          if (v < 0) throw_syntax_error(line, concat("truncated \\", c, "XX escape"));
          code_point = code_point * 16 + static_cast<char32_t>(v);
        }
        if (code_point > 0x10FFFF) throw_syntax_error(line, "illegal Unicode character");
        append_utf8(out, code_point);
        i += digits;
        break;
      }
      case 'N': throw_syntax_error(line, "\\N{...} character name escapes are not supported");
      default:
        if (c >= '0' && c <= '7') {
          char32_t code_point = 0;
          std::size_t k = 0;
          while (k < 3 && i + k < body.size() && body[i + k] >= '0' && body[i + k] <= '7') {
            code_point = code_point * 8 + static_cast<char32_t>(body[i + k] - '0');
            ++k;
          }
          append_utf8(out, code_point);
          i += k - 1;
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    while (pos_ < source_.size()) {
      const std::size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_data(std::string_view(source_).substr(pos_));
        pos_ = source_.size();
        break;
      }
      lex_tag_at(tag);
    }
    tokens_.push_back(Token{TokenType::kEnd, "", 0, 0, line_});
    return std::move(tokens_);
  }

 private:
  enum class TagKind { kVariable, kBlock, kComment, kRaw };

  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = source_.find('{', from); i != std::string::npos; i = source_.find('{', i + 1)) {
      if (i + 1 < source_.size() && (source_[i + 1] == '{' || source_[i + 1] == '%' || source_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  bool at(std::size_t pos, std::string_view text) const { return source_.compare(pos, text.size(), text) == 0; }

  std::size_t skip_whitespace(std::size_t pos) const {
    while (pos < source_.size() && is_ascii_space(source_[pos])) ++pos;
    return pos;
  }

  // Matches `{%[-+]?\s*<word>\s*` at `pos`; returns the position after it, or npos.
  std::size_t match_block_word(std::size_t pos, std::string_view word, char& sign) const {
    if (!at(pos, "{%")) return std::string::npos;
    pos += 2;
    sign = 0;
    if (pos < source_.size() && (source_[pos] == '-' || source_[pos] == '+')) sign = source_[pos++];
    pos = skip_whitespace(pos);
    if (!at(pos, word)) return std::string::npos;
    pos += word.size();
    const std::size_t after = skip_whitespace(pos);
    if (after == pos && !at(pos, "%}") && !at(pos, "-%}") && !at(pos, "+%}")) return std::string::npos;
    return after;
  }

  // Whitespace control for the text before a tag: "-" strips all trailing whitespace; otherwise lstrip_blocks
  // removes the spaces and tabs between the line start and a block or comment tag ("+" opts out).
  std::string_view control_text(std::string_view text, char sign, TagKind kind) const {
    if (sign == '-') return text.substr(0, rstripped_length(text));
    if (sign == '+' || kind == TagKind::kVariable) return text;
    const std::size_t newline = text.rfind('\n');
    const std::size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    if ((line_start > 0 || line_starting_) && line_start < text.size() && all_whitespace(text.substr(line_start))) {
      return text.substr(0, line_start);
    }
    return text;
  }

  void emit_data(std::string_view text) {
    if (!text.empty()) tokens_.push_back(Token{TokenType::kData, std::string(text), 0, 0, line_});
  }

  void advance_to(std::size_t pos) {
    for (std::size_t i = pos_; i < pos; ++i) line_ += source_[i] == '\n' ? 1 : 0;
    pos_ = pos;
  }

  // Consumes the text before a tag and the tag itself.
  void lex_tag_at(std::size_t tag) {
    TagKind kind = source_[tag + 1] == '{'   ? TagKind::kVariable
                   : source_[tag + 1] == '#' ? TagKind::kComment
                                             : TagKind::kBlock;
    std::size_t after = tag + 2;
    char sign = 0;
    if (after < source_.size() && (source_[after] == '-' || source_[after] == '+')) sign = source_[after++];
    if (kind == TagKind::kBlock) {
      char raw_sign = 0;
      std::size_t raw_end = match_block_word(tag, "raw", raw_sign);
      if (raw_end != std::string::npos) {
        // {% raw %}'s end takes no trim_blocks newline, only "-%}" whitespace.
        if (at(raw_end, "-%}")) {
          raw_end = skip_whitespace_unicode(raw_end + 3);
          kind = TagKind::kRaw;
        } else if (at(raw_end, "%}")) {
          raw_end += 2;
          kind = TagKind::kRaw;
        }
        if (kind == TagKind::kRaw) after = raw_end;
      }
    }
    const std::string_view text = std::string_view(source_).substr(pos_, tag - pos_);
    emit_data(control_text(text, sign, kind));
    advance_to(tag);
    switch (kind) {
      case TagKind::kComment:
        advance_to(after);
        lex_comment();
        break;
      case TagKind::kRaw:
        advance_to(after);
        line_starting_ = after > 0 && source_[after - 1] == '\n';
        lex_raw();
        break;
      case TagKind::kVariable:
      case TagKind::kBlock:
        tokens_.push_back(Token{kind == TagKind::kBlock ? TokenType::kBlockBegin : TokenType::kVariableBegin,
                                kind == TagKind::kBlock ? "{%" : "{{", 0, 0, line_});
        advance_to(after);
        lex_expression_tokens(kind == TagKind::kBlock);
        break;
    }
  }

  std::size_t skip_whitespace_unicode(std::size_t pos) const {
    const std::string_view rest = std::string_view(source_).substr(pos);
    std::size_t i = 0;
    while (i < rest.size()) {
      const auto lead = static_cast<unsigned char>(rest[i]);
      std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
      length = std::min(length, rest.size() - i);
      const std::u32string decoded = decode_utf8(rest.substr(i, length));
      if (decoded.size() != 1 || !is_space(decoded[0])) break;
      i += length;
    }
    return pos + i;
  }

  // Consumes the end of a tag: "+X" keeps what follows, "-X" strips following whitespace, and a plain block or
  // comment end takes one newline after it (trim_blocks).
  bool consume_tag_end(std::string_view end, bool trims_newline) {
    std::size_t next = std::string::npos;
    if (trims_newline && at(pos_, "+") && at(pos_ + 1, end)) {
      next = pos_ + 1 + end.size();
    } else if (at(pos_, "-") && at(pos_ + 1, end)) {
      next = skip_whitespace_unicode(pos_ + 1 + end.size());
    } else if (at(pos_, end)) {
      next = pos_ + end.size();
      if (trims_newline && next < source_.size() && source_[next] == '\n') ++next;
    }
    if (next == std::string::npos) return false;
    advance_to(next);
    line_starting_ = source_[next - 1] == '\n';
    return true;
  }

  void lex_comment() {
    std::size_t end = source_.find("#}", pos_);
    if (end == std::string::npos) throw_syntax_error(line_, "Missing end of comment tag");
    if (end > pos_ && (source_[end - 1] == '-' || source_[end - 1] == '+')) --end;
    advance_to(end);
    consume_tag_end("#}", true);
  }

  void lex_raw() {
    for (std::size_t candidate = source_.find("{%", pos_); candidate != std::string::npos;
         candidate = source_.find("{%", candidate + 1)) {
      char sign = 0;
      const std::size_t word_end = match_block_word(candidate, "endraw", sign);
      if (word_end == std::string::npos) continue;
      if (!at(word_end, "%}") && !at(word_end, "-%}") && !at(word_end, "+%}")) continue;
      emit_data(control_text(std::string_view(source_).substr(pos_, candidate - pos_), sign, TagKind::kBlock));
      advance_to(word_end);
      consume_tag_end("%}", true);
      return;
    }
    throw_syntax_error(line_, "Missing end of raw directive");
  }

  void lex_expression_tokens(bool block) {
    std::vector<char> open_brackets;
    while (pos_ < source_.size()) {
      if (open_brackets.empty()) {
        if (block ? consume_tag_end("%}", true) : consume_tag_end("}}", false)) {
          tokens_.push_back(
              Token{block ? TokenType::kBlockEnd : TokenType::kVariableEnd, block ? "%}" : "}}", 0, 0, line_});
          return;
        }
      }
      const char c = source_[pos_];
      if (is_ascii_space(c)) {
        advance_to(skip_whitespace(pos_));
      } else if (is_digit_char(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        std::size_t end = pos_;
        while (end < source_.size() && is_name_char(source_[end])) ++end;
        tokens_.push_back(Token{TokenType::kName, source_.substr(pos_, end - pos_), 0, 0, line_});
        advance_to(end);
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        lex_operator(open_brackets);
      }
    }
  }

  // Digits with single underscores between them: (\d+_)*\d+
  std::size_t scan_digits(std::size_t pos) const {
    std::size_t end = pos;
    while (end < source_.size() && is_digit_char(source_[end])) {
      ++end;
      if (end + 1 < source_.size() && source_[end] == '_' && is_digit_char(source_[end + 1])) ++end;
    }
    return end;
  }

  void lex_number() {
    const int line = line_;
    const bool after_dot = pos_ > 0 && source_[pos_ - 1] == '.';
    std::size_t end = scan_digits(pos_);
    bool is_float = false;
    if (!after_dot) {
      std::size_t fraction_end = end;
      if (fraction_end + 1 < source_.size() && source_[fraction_end] == '.' &&
          is_digit_char(source_[fraction_end + 1])) {
        fraction_end = scan_digits(fraction_end + 1);
        is_float = true;
      }
      if (fraction_end < source_.size() && (source_[fraction_end] == 'e' || source_[fraction_end] == 'E')) {
        std::size_t exponent = fraction_end + 1;
        if (exponent < source_.size() && (source_[exponent] == '+' || source_[exponent] == '-')) ++exponent;
        if (exponent < source_.size() && is_digit_char(source_[exponent])) {
          fraction_end = scan_digits(exponent);
          is_float = true;
        }
      }
      if (is_float) end = fraction_end;
    }
    std::string text;
    if (!is_float) {
      // Integers: 0x.., 0o.., 0b.., [1-9](_?\d)*, 0(_?0)*
      if (source_[pos_] == '0' && pos_ + 1 < source_.size() &&
          std::string_view("xXoObB").find(source_[pos_ + 1]) != std::string_view::npos) {
        const char base_char = static_cast<char>(source_[pos_ + 1] | 0x20);
        const int base = base_char == 'x' ? 16 : base_char == 'o' ? 8 : 2;
        std::size_t i = pos_ + 2;
        std::int64_t value = 0;
        bool any = false;
        while (i < source_.size()) {
          if (source_[i] == '_' && i + 1 < source_.size()) ++i;
          const int digit = hex_value(source_[i]);
          if (digit < 0 || digit >= base) break;
          value = value * base + digit;
          any = true;
          ++i;
        }
        if (any) {
          tokens_.push_back(Token{TokenType::kInteger, source_.substr(pos_, i - pos_), value, 0, line});
          advance_to(i);
          return;
        }
      }
      if (source_[pos_] == '0') {
        end = pos_ + 1;
        while (end < source_.size() &&
               (source_[end] == '0' || (source_[end] == '_' && end + 1 < source_.size() && source_[end + 1] == '0'))) {
          ++end;
        }
      }
    }
    for (std::size_t i = pos_; i < end; ++i) {
      if (source_[i] != '_') text += source_[i];
    }
    Token token{is_float ? TokenType::kFloat : TokenType::kInteger, source_.substr(pos_, end - pos_), 0, 0, line};
    if (is_float) {
      token.number = std::strtod(text.c_str(), nullptr);
    } else {
      token.integer = std::strtoll(text.c_str(), nullptr, 10);
    }
    tokens_.push_back(std::move(token));
    advance_to(end);
  }

  void lex_string(char quote) {
    const int line = line_;
    std::size_t i = pos_ + 1;
    while (i < source_.size() && source_[i] != quote) i += source_[i] == '\\' ? 2 : 1;
    if (i >= source_.size()) {
      throw_syntax_error(line, concat("unexpected char '", quote, "' at ", pos_));
    }
    tokens_.push_back(Token{TokenType::kString,
                            unescape(std::string_view(source_).substr(pos_ + 1, i - pos_ - 1), line), 0, 0, line});
    advance_to(i + 1);
  }

  void lex_operator(std::vector<char>& open_brackets) {
    static constexpr std::string_view kTwoCharOperators[] = {"//", "**", "==", "!=", ">=", "<="};
    static constexpr std::string_view kOneCharOperators = "+-/*%~[](){}<>=.:|,;";
    for (std::string_view op : kTwoCharOperators) {
      if (at(pos_, op)) {
        tokens_.push_back(Token{TokenType::kOperator, std::string(op), 0, 0, line_});
        advance_to(pos_ + 2);
        return;
      }
    }
    const char c = source_[pos_];
    if (kOneCharOperators.find(c) == std::string_view::npos) {
      throw_syntax_error(line_, concat("unexpected char '", c, "' at ", pos_));
    }
    if (c == '(' || c == '[' || c == '{') {
      open_brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (open_brackets.empty()) throw_syntax_error(line_, concat("unexpected '", c, "'"));
      if (open_brackets.back() != c) {
        throw_syntax_error(line_, concat("unexpected '", c, "', expected '", open_brackets.back(), "'"));
      }
      open_brackets.pop_back();
    }
    tokens_.push_back(Token{TokenType::kOperator, std::string(1, c), 0, 0, line_});
    advance_to(pos_ + 1);
  }

  std::string source_;
  std::size_t pos_ = 0;
  int line_ = 1;
  // Whether the last match ended a line: lstrip_blocks then also applies to a tag at the start of the text.
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace kiln::tokenizer::jinja
