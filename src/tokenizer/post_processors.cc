#include "tokenizer/post_processors.h"

#include <string>
#include <utility>

namespace kiln::tokenizer {
namespace {

// The ids of a single-sequence template: special tokens around the sequence's
// own ids, which take the place of the template's one "$A".
class TemplatePostProcessor final : public PostProcessor {
 public:
  TemplatePostProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}

  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_;
  std::vector<int32_t> after_;
};

class IdentityPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::vector<int32_t> special_token_ids(const JsonNode& config, const std::string& name) {
  if (!config.has("special_tokens") || !config["special_tokens"].has(name)) {
    config.fail("template uses special token \"", name, "\" that special_tokens does not define");
  }
  const JsonNode ids = config["special_tokens"][name]["ids"];
  std::vector<int32_t> result;
  for (std::size_t i = 0; i < ids.array_size(); ++i) {
    if (!ids[i].json().is_number_integer()) ids[i].fail("expected an integer id");
    result.push_back(ids[i].json().get<int32_t>());
  }
  return result;
}

std::unique_ptr<PostProcessor> make_template(const JsonNode& config) {
  const JsonNode single = config["single"];
  std::vector<int32_t> before;
  std::vector<int32_t> after;
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.array_size(); ++i) {
    const JsonNode piece = single[i];
    // A piece is {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<s>"}}, or
    // the string shorthand "$A" / "<s>", each optionally suffixed ":type_id".
    bool is_sequence = false;
    std::string id;
    if (piece.json().is_string()) {
      id = piece.json().get<std::string>();
      if (const std::size_t colon = id.rfind(':'); colon != std::string::npos && colon > 0) id.resize(colon);
      is_sequence = id.starts_with('$');
      if (is_sequence) id = id.size() == 1 ? "A" : id.substr(1);
    } else if (piece.has("Sequence")) {
      is_sequence = true;
      id = piece["Sequence"].string("id");
    } else if (piece.has("SpecialToken")) {
      id = piece["SpecialToken"].string("id");
    } else {
      piece.fail("expected a Sequence or SpecialToken piece");
    }
    if (is_sequence) {
      if (id != "A" && id != "0") piece.fail("the single-sequence template can only use sequence A");
      if (seen_sequence) piece.fail("the single-sequence template uses sequence A twice");
      seen_sequence = true;
      continue;
    }
    const std::vector<int32_t> ids = special_token_ids(config, id);
    std::vector<int32_t>& side = seen_sequence ? after : before;
    side.insert(side.end(), ids.begin(), ids.end());
  }
  if (!seen_sequence) single.fail("the single-sequence template has no $A");
  return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
}

// RobertaProcessing / BertProcessing: [cls] ids [sep].
std::unique_ptr<PostProcessor> make_cls_sep(const JsonNode& config) {
  const auto token_id = [&](const char* key) {
    const JsonNode pair = config[key];
    if (pair.array_size() != 2 || !pair[1].json().is_number_integer()) pair.fail("expected [token, id]");
    return pair[1].json().get<int32_t>();
  };
  return std::make_unique<TemplatePostProcessor>(std::vector<int32_t>{token_id("cls")},
                                                 std::vector<int32_t>{token_id("sep")});
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const JsonNode& config) {
  if (config.is_null()) return nullptr;
  const std::string type = config.type();
  if (type == "TemplateProcessing") return make_template(config);
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_cls_sep(config);
  if (type == "ByteLevel") return std::make_unique<IdentityPostProcessor>();
  if (type == "Sequence") {
    return std::make_unique<SequencePostProcessor>(
        make_steps<PostProcessor>(config["processors"], make_post_processor));
  }
  config.fail("unsupported post_processor type \"", type, "\"");
}

}  // namespace kiln::tokenizer
