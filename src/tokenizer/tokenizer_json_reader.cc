#include "tokenizer/tokenizer_json_reader.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace kiln::tokenizer {
namespace {

using json = nlohmann::json;

// A SAX handler that builds the document tree except for model.vocab and
// model.merges, whose entries it collects directly.
class TokenizerJsonHandler : public nlohmann::json_sax<json> {
 public:
  explicit TokenizerJsonHandler(std::string file, TokenizerJsonFile& out) : file_(std::move(file)), out_(out) {}

  const std::string& error() const { return error_; }

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (region_ == Region::kVocab) return vocab_id(v);
    return value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (region_ == Region::kVocab) return vocab_id(v <= INT32_MAX ? static_cast<int64_t>(v) : -1);
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (region_ == Region::kVocab) return vocab_id(-1);
    return value(json(v));
  }
  bool string(string_t& v) override {
    switch (region_) {
      case Region::kVocab: fail("model.vocab: token \"", vocab_token_, "\" has no valid id");
      case Region::kMerges: return merge_line(v);
      case Region::kMergePair:
        if (pair_.size() == 2) fail("model.merges[", out_.merges.size(), "]: expected [left, right]");
        pair_.push_back(std::move(v));
        return true;
      case Region::kTree: return value(json(std::move(v)));
    }
    return false;
  }
  bool binary(binary_t&) override { return value(json()); }

  bool start_object(std::size_t) override {
    if (region_ != Region::kTree) fail(region_name(), ": unexpected object");
    if (entering("vocab")) {
      insert(json::object());  // left empty in the tree
      region_ = Region::kVocab;
      return true;
    }
    return open(json::object());
  }
  bool key(string_t& k) override {
    if (region_ == Region::kVocab) {
      vocab_token_ = std::move(k);
    } else {
      key_ = std::move(k);
    }
    return true;
  }
  bool end_object() override {
    if (region_ == Region::kVocab) {
      region_ = Region::kTree;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (region_ == Region::kMerges) {
      region_ = Region::kMergePair;
      pair_.clear();
      return true;
    }
    if (region_ != Region::kTree) fail(region_name(), ": unexpected array");
    if (entering("merges")) {
      insert(json::array());  // left empty in the tree
      region_ = Region::kMerges;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (region_ == Region::kMergePair) {
      if (pair_.size() != 2) fail("model.merges[", out_.merges.size(), "]: expected [left, right]");
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      region_ = Region::kMerges;
      return true;
    }
    if (region_ == Region::kMerges) {
      region_ = Region::kTree;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

 private:
  enum class Region { kTree, kVocab, kMerges, kMergePair };

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    throw_error(file_, ": ", std::forward<Parts>(parts)...);
  }

  const char* region_name() const {
    return region_ == Region::kVocab ? "model.vocab" : region_ == Region::kMerges ? "model.merges" : "model.merges[]";
  }

  // Whether the container about to open is model.<name> of the root object.
  bool entering(const char* name) const {
    return stack_.size() == 2 && stack_[1].second == "model" && stack_.back().first->is_object() && key_ == name;
  }

  // Adds a value to the open container (or makes it the root); returns where it is.
  json* insert(json&& v) {
    if (stack_.empty()) {
      out_.config = std::move(v);
      return &out_.config;
    }
    json& parent = *stack_.back().first;
    if (parent.is_object()) {
      json& slot = parent[key_];
      slot = std::move(v);
      return &slot;
    }
    parent.push_back(std::move(v));
    return &parent.back();
  }
  bool value(json&& v) {
    if (region_ != Region::kTree) fail(region_name(), ": unexpected value ", v.dump());
    insert(std::move(v));
    return true;
  }
  bool open(json&& container) {
    const std::string key = !stack_.empty() && stack_.back().first->is_object() ? key_ : std::string();
    stack_.emplace_back(insert(std::move(container)), key);
    return true;
  }

  bool vocab_id(int64_t id) {
    if (id < 0 || id > INT32_MAX) fail("model.vocab: token \"", vocab_token_, "\" has no valid id");
    out_.vocab.emplace_back(std::move(vocab_token_), static_cast<int32_t>(id));
    return true;
  }
  bool merge_line(const std::string& line) {
    if (line.starts_with("#version")) return true;
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      fail("model.merges[", out_.merges.size(), "]: expected \"left right\", got \"", line, "\"");
    }
    out_.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    return true;
  }

  std::string file_;
  TokenizerJsonFile& out_;
  std::string error_;
  // Open containers of the tree with the key each was opened under.
  std::vector<std::pair<json*, std::string>> stack_;
  std::string key_;
  Region region_ = Region::kTree;
  std::string vocab_token_;
  std::vector<std::string> pair_;
};

}  // namespace

TokenizerJsonFile read_tokenizer_json(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(file, ": cannot open tokenizer file");
  std::ostringstream contents;
  contents << in.rdbuf();
  const std::string text = contents.str();

  TokenizerJsonFile result;
  TokenizerJsonHandler handler(file, result);
  if (!json::sax_parse(text, &handler)) throw_error(file, ": malformed JSON: ", handler.error());
  return result;
}

}  // namespace kiln::tokenizer
