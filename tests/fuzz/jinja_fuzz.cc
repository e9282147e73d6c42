// Fuzzes the Jinja chat-template engine: the bytes parsed as a template, then rendered with a small fixed
// conversation as apply_chat_template passes it. Renders are bounded (jinja_limits.h), so a template that would
// run long or build huge strings fails with a TemplateLimitError, which like every kiln::Error is expected.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz_support.h"
#include "tokenizer/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello, what is 2 + 2?"},
      {"role": "assistant", "content": "  4  ", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
      {"role": "tool", "content": [{"type": "text", "text": "4"}]},
      {"role": "user", "content": "Thanks"}
    ],
    "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
    "documents": null,
    "add_generation_prompt": true,
    "bos_token": "<s>",
    "eos_token": "</s>"
  })");
  return kContext;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view source = kiln::fuzz::as_text(data, size);
  kiln::fuzz::expect_only_kiln_errors([&] {
    const kiln::tokenizer::ChatTemplate chat_template(source);
    (void)chat_template.render(context());
  });
  return 0;
}
