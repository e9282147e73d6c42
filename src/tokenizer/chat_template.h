// Chat templates: a model's Jinja chat_template rendered exactly as transformers' apply_chat_template renders it
// (Jinja2 in an immutable sandbox with trim_blocks and lstrip_blocks, raise_exception and strftime_now), and the
// chat settings a model directory carries.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kiln::tokenizer {

namespace jinja {
struct Stmt;
}

class ChatTemplate {
 public:
  // Parses the template; throws kiln::Error with the line and a description on syntax errors.
  explicit ChatTemplate(std::string_view source);

  // Renders with `context`, a JSON object of variables (messages, add_generation_prompt, bos_token, eos_token,
  // ...). A template calling raise_exception(msg) throws kiln::Error whose message is exactly msg; other runtime
  // errors throw kiln::Error("<Python exception type>: <message>"), e.g. "UndefinedError: 'x' is undefined".
  std::string render(const nlohmann::json& context) const;
  // The same for an ordered_json context, whose dicts keep the document's key order (as Python's do, which tojson
  // and dict iteration show). A template only so that a braced initializer list still means nlohmann::json.
  template <typename Json, typename = std::enable_if_t<std::is_same_v<Json, nlohmann::ordered_json>>>
  std::string render(const Json& context) const {
    return render_ordered(context);
  }

 private:
  std::string render_ordered(const nlohmann::ordered_json& context) const;

  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
};

// What a model's tokenizer_config.json says about chat: its template (a string, or the list form
// [{"name": ..., "template": ...}] where "default" is chosen) and the bos/eos token strings (strings or
// {"content": ...} AddedToken dicts). Without a template, ChatML is used:
//   {% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' +
//   '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
struct ChatSettings {
  std::string template_source;
  bool is_default_chatml = false;
  std::string bos_token, eos_token;

  // Reads DIR/tokenizer_config.json if present, DIR/special_tokens_map.json for its token overrides, and the
  // template files newer transformers saves: DIR/chat_template.jinja (which wins over the config's template, as
  // in transformers) and DIR/chat_template.json.
  static ChatSettings load(const std::filesystem::path& dir);
};

// The ChatML template used when a model has none.
extern const std::string_view kChatMlTemplate;

// Renders `messages` (a JSON array of {"role", "content", ...}) as transformers' apply_chat_template(messages,
// tokenize=False, add_generation_prompt=...) does: bos_token and eos_token are passed when non-empty, tools and
// documents as None.
std::string apply_chat_template(const ChatSettings& settings, const nlohmann::json& messages,
                                bool add_generation_prompt);
// The same for ordered_json messages (dict key order kept), again a template so braced lists mean nlohmann::json.
std::string apply_chat_template_ordered(const ChatSettings& settings, const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt);
template <typename Json, typename = std::enable_if_t<std::is_same_v<Json, nlohmann::ordered_json>>>
std::string apply_chat_template(const ChatSettings& settings, const Json& messages, bool add_generation_prompt) {
  return apply_chat_template_ordered(settings, messages, add_generation_prompt);
}

}  // namespace kiln::tokenizer
