// ChatTemplate, ChatSettings and apply_chat_template: the reference renderings of the fixture tokenizers, the
// settings a model directory carries, and end-to-end renders of real chat templates.
#include "tokenizer/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace kiln::tokenizer {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::filesystem::path kFixtures = std::filesystem::path(KILN_FIXTURES) / "tokenizers";

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kiln-chat-template-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---- the reference renderings (transformers' apply_chat_template, made by make_tokenizer_fixtures.py) ----

class FixtureChatTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureChatTest, RendersLikeTransformers) {
  const std::filesystem::path dir = kFixtures / GetParam();
  std::ifstream in(dir / "cases.json");
  ASSERT_TRUE(in) << dir;
  const ordered_json cases = ordered_json::parse(in);
  const ChatSettings settings = ChatSettings::load(dir);
  ASSERT_FALSE(cases["chat"].empty());
  for (const auto& chat : cases["chat"]) {
    SCOPED_TRACE(chat["messages"].dump());
    EXPECT_EQ(settings.is_default_chatml, chat["template"] == "chatml");
    const bool add_generation_prompt = chat["add_generation_prompt"].get<bool>();
    const ordered_json& rendered = chat["rendered"];
    if (rendered.is_string()) {
      EXPECT_EQ(apply_chat_template(settings, chat["messages"], add_generation_prompt), rendered.get<std::string>());
    } else {
      // {"error": "TemplateError: <message>"}: raise_exception's message is the whole error.
      std::string expected = rendered["error"].get<std::string>();
      const std::string prefix = "TemplateError: ";
      if (expected.starts_with(prefix)) expected = expected.substr(prefix.size());
      EXPECT_EQ(error_of([&] { apply_chat_template(settings, chat["messages"], add_generation_prompt); }), expected);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureChatTest, ::testing::Values("llama2", "llama3", "qwen3", "gpt2"),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

// ---- ChatSettings::load ----

TEST(ChatSettingsTest, ReadsTemplateAndTokenStrings) {
  TempDir dir;
  dir.write("tokenizer_config.json",
            R"({"chat_template": "{{ bos_token }}x", "bos_token": "<s>", "eos_token": "</s>"})");
  const ChatSettings settings = ChatSettings::load(dir.path());
  EXPECT_EQ(settings.template_source, "{{ bos_token }}x");
  EXPECT_FALSE(settings.is_default_chatml);
  EXPECT_EQ(settings.bos_token, "<s>");
  EXPECT_EQ(settings.eos_token, "</s>");
}

TEST(ChatSettingsTest, ReadsAddedTokenDictsAndNull) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"bos_token": {"__type": "AddedToken", "content": "<|begin|>", "lstrip": false},
                                         "eos_token": null})");
  const ChatSettings settings = ChatSettings::load(dir.path());
  EXPECT_EQ(settings.bos_token, "<|begin|>");
  EXPECT_EQ(settings.eos_token, "");
}

TEST(ChatSettingsTest, PicksTheDefaultOfNamedTemplates) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "tools"},
                                                           {"name": "default", "template": "plain"}]})");
  EXPECT_EQ(ChatSettings::load(dir.path()).template_source, "plain");
}

TEST(ChatSettingsTest, NamedTemplatesWithoutDefaultAreAnError) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "tools"}]})");
  EXPECT_THAT(error_of([&] { ChatSettings::load(dir.path()); }), HasSubstr("default"));
}

TEST(ChatSettingsTest, FallsBackToChatMl) {
  TempDir empty;
  const ChatSettings settings = ChatSettings::load(empty.path());
  EXPECT_TRUE(settings.is_default_chatml);
  EXPECT_EQ(settings.template_source, kChatMlTemplate);
  EXPECT_EQ(settings.bos_token, "");
  // An empty template counts as none, as `cfg.get("chat_template") or CHATML` has it.
  TempDir with_empty;
  with_empty.write("tokenizer_config.json", R"({"chat_template": ""})");
  EXPECT_TRUE(ChatSettings::load(with_empty.path()).is_default_chatml);
}

TEST(ChatSettingsTest, ReadsTemplateFilesOfNewerTransformers) {
  TempDir jinja_file;
  jinja_file.write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  jinja_file.write("chat_template.jinja", "from the jinja file\n");
  EXPECT_EQ(ChatSettings::load(jinja_file.path()).template_source, "from the jinja file\n");

  TempDir json_file;
  json_file.write("chat_template.json", R"({"chat_template": "from the json file"})");
  EXPECT_EQ(ChatSettings::load(json_file.path()).template_source, "from the json file");

  // transformers lets chat_template.jinja clobber the config's template.
  TempDir both;
  both.write("tokenizer_config.json", R"({"chat_template": "from the config"})");
  both.write("chat_template.jinja", "from the jinja file");
  EXPECT_EQ(ChatSettings::load(both.path()).template_source, "from the jinja file");
}

TEST(ChatSettingsTest, SpecialTokensMapOverridesConfigTokens) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"bos_token": "<old>", "eos_token": "</s>"})");
  dir.write("special_tokens_map.json", R"({"bos_token": {"content": "<new>"}})");
  const ChatSettings settings = ChatSettings::load(dir.path());
  EXPECT_EQ(settings.bos_token, "<new>");
  EXPECT_EQ(settings.eos_token, "</s>");
}

TEST(ChatSettingsTest, InvalidConfigNamesTheFile) {
  TempDir dir;
  dir.write("tokenizer_config.json", "{not json");
  EXPECT_THAT(error_of([&] { ChatSettings::load(dir.path()); }), HasSubstr("tokenizer_config.json"));
}

// ---- apply_chat_template's context ----

TEST(ApplyChatTemplateTest, PassesToolsAndDocumentsAsNone) {
  // transformers renders with tools=None and documents=None: defined, and none.
  ChatSettings settings{"{{ tools is defined }} {{ tools is none }} {{ documents is none }}", false, "", ""};
  EXPECT_EQ(apply_chat_template(settings, json::array(), false), "True True True");
}

TEST(ApplyChatTemplateTest, PassesOnlyTokensThatAreSet) {
  // special_tokens_map leaves out unset tokens, so an empty bos_token is undefined, not "".
  ChatSettings settings{"{{ bos_token is defined }} {{ eos_token }} {{ add_generation_prompt }}", false, "", "</s>"};
  EXPECT_EQ(apply_chat_template(settings, json::array(), true), "False </s> True");
}

TEST(ApplyChatTemplateTest, ChatMlRendersEachMessage) {
  ChatSettings settings{std::string(kChatMlTemplate), true, "", ""};
  const json messages = {{{"role", "user"}, {"content", "Hi"}}};
  EXPECT_EQ(apply_chat_template(settings, messages, true), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ApplyChatTemplateTest, OrderedJsonKeepsKeyOrder) {
  // json.dumps keeps insertion order; ordered_json preserves it, nlohmann::json sorts keys.
  ChatSettings settings{"{{ messages[0]|tojson }}", false, "", ""};
  const ordered_json ordered = ordered_json::parse(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(apply_chat_template(settings, ordered, false), R"({"role": "user", "content": "x"})");
  EXPECT_EQ(apply_chat_template(settings, json::parse(R"([{"role": "user", "content": "x"}])"), false),
            R"({"content": "x", "role": "user"})");
}

TEST(ApplyChatTemplateTest, AcceptsBracedInitializerLists) {
  ChatSettings settings{"{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}", false, "", ""};
  EXPECT_EQ(apply_chat_template(settings, {{{"role", "user"}, {"content", "hi"}}}, false), "user:hi;");
  EXPECT_EQ(ChatTemplate("{{ x }}").render({{"x", 1}}), "1");
}

// ---- errors ----

TEST(ChatTemplateErrorTest, RaiseExceptionMessageIsTheWholeError) {
  const ChatTemplate tmpl("{% if messages|length == 0 %}{{ raise_exception('No messages!') }}{% endif %}");
  EXPECT_EQ(error_of([&] { tmpl.render(json{{"messages", json::array()}}); }), "No messages!");
}

TEST(ChatTemplateErrorTest, SyntaxErrorsNameTheLine) {
  EXPECT_EQ(error_of([] { ChatTemplate("line one\n{% if x %}\n{% endfor %}"); }),
            "chat template syntax error at line 3: Encountered unknown tag 'endfor'. Jinja was looking for the "
            "following tags: 'elif' or 'else' or 'endif'.");
  EXPECT_THAT(error_of([] { ChatTemplate("{{ 1 +\n }}"); }), StartsWith("chat template syntax error at line 2"));
  EXPECT_THAT(error_of([] { ChatTemplate("{% for m in messages %}"); }), HasSubstr("'endfor'"));
}

TEST(ChatTemplateErrorTest, RuntimeErrorsNameTheProblem) {
  const ChatTemplate tmpl("{{ messages[0].content + 1 }}");
  EXPECT_EQ(error_of([&] {
              tmpl.render(json{{"messages", {{{"content", "x"}}}}});
            }),
            "TypeError: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of([] { ChatTemplate("{{ message.content }}").render(json::object()); }),
            "UndefinedError: 'message' is undefined");
  EXPECT_THAT(error_of([] { ChatTemplate("{{ 1 }}").render(json::array()); }), HasSubstr("JSON object"));
}

TEST(ChatTemplateErrorTest, InfiniteMacroRecursionFails) {
  EXPECT_EQ(error_of([] { ChatTemplate("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").render(json::object()); }),
            "RecursionError: maximum recursion depth exceeded");
}

// ---- end-to-end renders of real templates ----
//
// The conversation of llama.cpp's chat template tests: a system prompt, then alternating turns, the second
// assistant turn padded with spaces (templates that strip show it).
ordered_json conversation(bool with_system) {
  ordered_json messages = ordered_json::parse(R"([
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there"},
    {"role": "user", "content": "Who are you"},
    {"role": "assistant", "content": "   I am an assistant   "},
    {"role": "user", "content": "Another question"}])");
  if (!with_system) messages.erase(messages.begin());
  return messages;
}

std::string render_chat(std::string_view source, const ordered_json& messages, bool add_generation_prompt) {
  return apply_chat_template(ChatSettings{std::string(source), false, "<s>", "</s>"}, messages, add_generation_prompt);
}

// meta-llama/Llama-2-7b-chat-hf.
constexpr std::string_view kLlama2 =
    R"({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})";

TEST(RealTemplateTest, Llama2Chat) {
  // The system prompt is folded into the first user turn inside <<SYS>> markers; every user turn opens with
  // bos_token and "[INST] ", contents are strip()ped, assistant turns are " content </s>". The template has no
  // generation prompt, so add_generation_prompt changes nothing.
  const std::string expected =
      "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
      "<s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]";
  EXPECT_EQ(render_chat(kLlama2, conversation(true), false), expected);
  EXPECT_EQ(render_chat(kLlama2, conversation(true), true), expected);
  // Without a system message, system_message is false and the first turn is plain.
  EXPECT_EQ(render_chat(kLlama2, conversation(false), false),
            "<s>[INST] Hello [/INST] Hi there </s><s>[INST] Who are you [/INST] I am an assistant </s>"
            "<s>[INST] Another question [/INST]");
  // Two user turns in a row: loop.index0 1 is odd but the role is user, so the template raises.
  const ordered_json twice =
      ordered_json::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
  EXPECT_EQ(error_of([&] { render_chat(kLlama2, twice, false); }),
            "Conversation roles must alternate user/assistant/user/assistant/...");
}

// mistralai/Mistral-7B-Instruct-v0.1.
constexpr std::string_view kMistralV01 =
    R"({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})";

// mistralai/Mistral-7B-Instruct-v0.2's later template (optional system message, whitespace-controlled lines).
constexpr std::string_view kMistralV1 = R"({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)";

TEST(RealTemplateTest, MistralInstruct) {
  // v0.1: no system role (the system message at index 0 trips the alternation check, which runs before the
  // role check); assistant text is appended unstripped right after "[/INST]".
  EXPECT_EQ(error_of([&] { render_chat(kMistralV01, conversation(true), true); }),
            "Conversation roles must alternate user/assistant/user/assistant/...");
  EXPECT_EQ(render_chat(kMistralV01, conversation(false), true),
            "<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>"
            "[INST] Another question [/INST]");
  // v1: every tag and expression is "-" controlled, so the indentation and newlines of the source vanish; the
  // system message joins the first user turn with "\n\n"; assistant turns get a leading space.
  EXPECT_EQ(render_chat(kMistralV1, conversation(true), true),
            "<s> [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]"
            "    I am an assistant   </s> [INST] Another question [/INST]");
  const ordered_json tool = ordered_json::parse(R"([{"role": "tool", "content": "x"}])");
  EXPECT_EQ(error_of([&] { render_chat(kMistralV1, tool, true); }),
            "After the optional system message, conversation roles must alternate user/assistant/user/assistant/...");
}

// HuggingFaceH4/zephyr-7b-beta: one statement per line, so trim_blocks decides the output.
constexpr std::string_view kZephyr = R"({% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>
'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %})";

TEST(RealTemplateTest, Zephyr) {
  // Block tags swallow their own newline (trim_blocks) but an expression keeps the newline after it, so each
  // turn is "<|role|>\ncontent</s>\n"; the generation prompt line is "<|assistant|>\n".
  const std::string turns =
      "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n"
      "<|user|>\nWho are you</s>\n<|assistant|>\n   I am an assistant   </s>\n<|user|>\nAnother question</s>\n";
  EXPECT_EQ(render_chat(kZephyr, conversation(true), false), turns);
  EXPECT_EQ(render_chat(kZephyr, conversation(true), true), turns + "<|assistant|>\n");
}

// THUDM/chatglm3-6b: roles in <|...|> markers with a newline and a space before the content.
constexpr std::string_view kChatGlm3 =
    "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n {{ message['content'] }}"
    "{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}";

TEST(RealTemplateTest, ChatGlm3) {
  // The newline inside the template text follows an expression, so trim_blocks leaves it; "[gMASK]sop" opens
  // only the first message (loop.first).
  const std::string turns =
      "[gMASK]sop<|system|>\n You are a helpful assistant<|user|>\n Hello<|assistant|>\n Hi there<|user|>\n"
      " Who are you<|assistant|>\n    I am an assistant   <|user|>\n Another question";
  EXPECT_EQ(render_chat(kChatGlm3, conversation(true), false), turns);
  EXPECT_EQ(render_chat(kChatGlm3, conversation(true), true), turns + "<|assistant|>");
}

// google/gemma-2-2b-it.
constexpr std::string_view kGemma =
    R"({{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})";

TEST(RealTemplateTest, Gemma) {
  EXPECT_EQ(error_of([&] { render_chat(kGemma, conversation(true), true); }), "System role not supported");
  // The filter binds tighter than +: only the content is trimmed. "assistant" is renamed "model", and the
  // {% set role %} inside the loop body is per iteration.
  EXPECT_EQ(render_chat(kGemma, conversation(false), true),
            "<s><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
            "<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
            "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
}

// microsoft/Phi-3-mini-4k-instruct (the template with newlines written inside the string literals).
constexpr std::string_view kPhi3 = R"({% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %})";

TEST(RealTemplateTest, Phi3) {
  // Newlines inside string literals are kept verbatim; without a generation prompt the text ends in eos_token.
  const std::string turns =
      "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
      "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother "
      "question<|end|>\n";
  EXPECT_EQ(render_chat(kPhi3, conversation(true), false), turns + "</s>");
  EXPECT_EQ(render_chat(kPhi3, conversation(true), true), turns + "<|assistant|>\n");
}

// The Qwen3 template of the fixtures: namespace state set in a reversed loop, str methods, reasoning content.
std::string qwen3_template() {
  std::ifstream in(kFixtures / "qwen3" / "tokenizer_config.json");
  return json::parse(in)["chat_template"].get<std::string>();
}

TEST(RealTemplateTest, Qwen3ReasoningAndThinkingSwitch) {
  const ChatTemplate tmpl(qwen3_template());
  ordered_json context = ordered_json::parse(R"({
    "messages": [{"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "<think>\nfirst thoughts\n</think>\n\nAnswer."},
                 {"role": "user", "content": "More"}],
    "add_generation_prompt": true, "tools": null, "eos_token": "<|im_end|>"})");
  // ns.last_query_index is the last user turn (index 2); the assistant turn before it loses its <think> block
  // (content.split('</think>')[-1].lstrip('\n')).
  EXPECT_EQ(tmpl.render(context),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nAnswer.<|im_end|>\n"
            "<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n");
  // The last assistant turn after the last query keeps its reasoning, re-wrapped.
  context["messages"].erase(2);
  context["add_generation_prompt"] = false;
  EXPECT_EQ(tmpl.render(context),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nfirst "
            "thoughts\n</think>\n\nAnswer.<|im_end|>\n");
  // An extra keyword: enable_thinking=false adds an empty think block after the generation prompt.
  context["messages"] = ordered_json::parse(R"([{"role": "user", "content": "Hi"}])");
  context["add_generation_prompt"] = true;
  context["enable_thinking"] = false;
  EXPECT_EQ(tmpl.render(context), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(RealTemplateTest, Qwen3ToolCallsAndResponses) {
  const ChatTemplate tmpl(qwen3_template());
  const ordered_json context = ordered_json::parse(R"({
    "messages": [{"role": "user", "content": "Weather?"},
                 {"role": "assistant", "content": "", "tool_calls": [
                   {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
                 {"role": "tool", "content": "sunny"},
                 {"role": "tool", "content": "warm"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "add_generation_prompt": false})");
  // Tools are listed one JSON object per line (tojson keeps the document's key order, ", " and ": "
  // separators); arguments that are not a string go through tojson; consecutive tool turns share one user turn.
  EXPECT_EQ(tmpl.render(context),
            "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            R"({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}})"
            "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\nWeather?<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            "{\"city\": \"Paris\", \"days\": 2}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nwarm\n</tool_response>"
            "<|im_end|>\n");
}

// ---- performance: parse once, render many times ----

TEST(ChatTemplatePerformanceTest, RendersATenMessageConversationWellUnderAMillisecond) {
  const ChatTemplate tmpl(qwen3_template());
  ordered_json messages = ordered_json::array();
  for (int i = 0; i < 10; ++i) {
    messages.push_back({{"role", i % 2 == 0 ? "user" : "assistant"},
                        {"content", "message number " + std::to_string(i) + " with some ordinary text in it"}});
  }
  const ordered_json context = {{"messages", messages}, {"add_generation_prompt", true}, {"tools", nullptr}};
  constexpr int kRenders = 200;
  std::size_t total_size = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRenders; ++i) total_size += tmpl.render(context).size();
  const auto elapsed = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start);
  EXPECT_GT(total_size, 0u);
  // Well under a millisecond in an optimized build (about 20 us); unoptimized or sanitized builds get slack.
#ifdef NDEBUG
  constexpr double kBudgetMicroseconds = 1000;
#else
  constexpr double kBudgetMicroseconds = 20000;
#endif
  EXPECT_LT(elapsed.count() / kRenders, kBudgetMicroseconds) << "microseconds per render";
}

TEST(ChatTemplateConcurrencyTest, OneTemplateRendersOnManyThreads) {
  // Rendering only reads the parsed template, so one ChatTemplate may serve concurrent requests.
  const ChatTemplate tmpl(qwen3_template());
  const ordered_json context = {{"messages", conversation(true)}, {"add_generation_prompt", true}};
  const std::string expected = tmpl.render(context);
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) results[t] = tmpl.render(context);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& result : results) EXPECT_EQ(result, expected);
}

}  // namespace
}  // namespace kiln::tokenizer
