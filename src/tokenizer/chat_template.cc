#include "tokenizer/chat_template.h"

#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "tokenizer/jinja_evaluator.h"
#include "tokenizer/jinja_json.h"
#include "tokenizer/jinja_parser.h"

namespace kiln::tokenizer {

const std::string_view kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

template <typename Json>
std::vector<std::pair<std::string, jinja::Value>> context_variables(const Json& context) {
  if (!context.is_object()) throw_error("chat template context must be a JSON object, got ", context.type_name());
  std::vector<std::pair<std::string, jinja::Value>> variables;
  variables.reserve(context.size());
  for (auto it = context.begin(); it != context.end(); ++it)
    variables.emplace_back(it.key(), jinja::from_json(it.value()));
  return variables;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot read ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json read_json(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw_error(path.string(), ": invalid JSON: ", e.what());
  }
}

// A token as tokenizer_config.json writes it: a string, an AddedToken dict, or null.
std::string token_text(const nlohmann::json& token, const std::filesystem::path& file, std::string_view key) {
  if (token.is_string()) return token.get<std::string>();
  if (token.is_object() && token.contains("content") && token["content"].is_string()) {
    return token["content"].get<std::string>();
  }
  if (token.is_null()) return "";
  throw_error(file.string(), ": ", key, " must be a string or {\"content\": ...}, got ", token.dump());
}

// chat_template is a string or a list of named templates, of which transformers uses "default".
std::string template_text(const nlohmann::json& value, const std::filesystem::path& file) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    for (const auto& entry : value) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
    throw_error(file.string(), ": chat_template lists named templates but none is named \"default\"");
  }
  throw_error(file.string(), ": chat_template must be a string or a list of {\"name\", \"template\"}");
}

// apply_chat_template is called once per request with the same settings: parsing again each time would cost
// more than rendering, so the last parsed template is kept.
std::shared_ptr<const ChatTemplate> parsed_template(const std::string& source) {
  static std::mutex mutex;
  static std::string cached_source;
  static std::shared_ptr<const ChatTemplate> cached;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (cached && cached_source == source) return cached;
  }
  auto parsed = std::make_shared<const ChatTemplate>(source);
  const std::lock_guard<std::mutex> lock(mutex);
  cached_source = source;
  cached = parsed;
  return parsed;
}

template <typename Json>
std::string apply(const ChatSettings& settings, const Json& messages, bool add_generation_prompt) {
  Json context = Json::object();
  context["messages"] = messages;
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  // transformers passes the special tokens that are set (special_tokens_map leaves out empty ones).
  if (!settings.bos_token.empty()) context["bos_token"] = settings.bos_token;
  if (!settings.eos_token.empty()) context["eos_token"] = settings.eos_token;
  return parsed_template(settings.template_source)->render(context);
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source)
    : body_(std::make_shared<const jinja::Body>(jinja::parse_template(source))) {}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return jinja::render_template(*body_, context_variables(context));
}

std::string ChatTemplate::render_ordered(const nlohmann::ordered_json& context) const {
  return jinja::render_template(*body_, context_variables(context));
}

ChatSettings ChatSettings::load(const std::filesystem::path& dir) {
  ChatSettings settings;
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const nlohmann::json config = read_json(config_path);
    if (!config.is_object()) throw_error(config_path.string(), ": expected a JSON object");
    if (config.contains("chat_template") && !config["chat_template"].is_null()) {
      settings.template_source = template_text(config["chat_template"], config_path);
    }
    if (config.contains("bos_token")) settings.bos_token = token_text(config["bos_token"], config_path, "bos_token");
    if (config.contains("eos_token")) settings.eos_token = token_text(config["eos_token"], config_path, "eos_token");
  }
  // transformers lets special_tokens_map.json override the config's tokens.
  const std::filesystem::path map_path = dir / "special_tokens_map.json";
  if (std::filesystem::exists(map_path)) {
    const nlohmann::json map = read_json(map_path);
    if (map.is_object() && map.contains("bos_token"))
      settings.bos_token = token_text(map["bos_token"], map_path, "bos_token");
    if (map.is_object() && map.contains("eos_token"))
      settings.eos_token = token_text(map["eos_token"], map_path, "eos_token");
  }
  // Newer transformers saves the template beside the config; chat_template.jinja clobbers the config's template.
  const std::filesystem::path jinja_path = dir / "chat_template.jinja";
  const std::filesystem::path json_path = dir / "chat_template.json";
  if (std::filesystem::exists(jinja_path)) {
    settings.template_source = read_file(jinja_path);
  } else if (settings.template_source.empty() && std::filesystem::exists(json_path)) {
    const nlohmann::json file = read_json(json_path);
    if (!file.is_object() || !file.contains("chat_template")) {
      throw_error(json_path.string(), ": expected an object with \"chat_template\"");
    }
    settings.template_source = template_text(file["chat_template"], json_path);
  }
  if (settings.template_source.empty()) {
    settings.template_source = std::string(kChatMlTemplate);
    settings.is_default_chatml = true;
  }
  return settings;
}

std::string apply_chat_template(const ChatSettings& settings, const nlohmann::json& messages,
                                bool add_generation_prompt) {
  return apply(settings, messages, add_generation_prompt);
}

std::string apply_chat_template_ordered(const ChatSettings& settings, const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt) {
  return apply(settings, messages, add_generation_prompt);
}

}  // namespace kiln::tokenizer
