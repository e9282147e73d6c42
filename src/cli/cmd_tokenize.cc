// kiln tokenize / detokenize / chat: the tokenizer and chat template of a
// model (or of an engine, which carries them), as HuggingFace applies them.
#include <cstdio>

#include "cli/commands.h"
#include "cli/engine_session.h"
#include "cli/text_io.h"
#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kiln::cli {
namespace {

struct TokenizerArgs {
  std::string tokenizer, engine;
};

void add_tokenizer_options(CLI::App* cmd, TokenizerArgs& a) {
  cmd->add_option("--tokenizer", a.tokenizer, "Directory with tokenizer.json (or tokenizer.model)");
  cmd->add_option("--engine", a.engine, "Engine directory (uses the tokenizer it carries)");
}

void add_tokenize(CLI::App& app) {
  struct Args : TokenizerArgs {
    std::string text, file;
    bool add_special_tokens = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Text -> token ids, exactly as HuggingFace tokenizers");
  add_tokenizer_options(cmd, *a);
  CLI::Option* text = cmd->add_option("--text", a->text, "Text to tokenize");
  CLI::Option* file = cmd->add_option("--file", a->file, "File whose contents to tokenize");
  cmd->add_flag("--add-special-tokens", a->add_special_tokens, "Add BOS/EOS as the tokenizer's post-processor says");
  cmd->add_flag("--json", a->json, "Print {\"ids\": [...], \"tokens\": [...]}");
  cmd->callback([a, text, file] {
    // --text "" is a real (empty) text, so count the options rather than test their values.
    if (text->count() + file->count() != 1) throw_error("give exactly one of --text TEXT and --file FILE");
    const std::string input = file->count() ? read_text_file(a->file, "--file") : a->text;
    const auto tok = tokenizer::Tokenizer::load(tokenizer_dir(a->tokenizer, a->engine));
    const auto ids = tok->encode(input, a->add_special_tokens);
    if (a->json) {
      nlohmann::json tokens = nlohmann::json::array();
      for (int32_t id : ids) tokens.push_back(tok->id_to_token(id));
      std::printf("%s\n", nlohmann::json{{"ids", ids}, {"tokens", tokens}}.dump().c_str());
    } else {
      std::string out;
      for (int32_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
      std::printf("%s\n", out.c_str());
    }
  });
}

void add_detokenize(CLI::App& app) {
  struct Args : TokenizerArgs {
    std::string ids;
    bool skip_special_tokens = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("detokenize", "Token ids -> text, exactly as HuggingFace tokenizers");
  add_tokenizer_options(cmd, *a);
  cmd->add_option("--ids", a->ids, "Token ids, comma-separated")->required();
  cmd->add_flag("--skip-special-tokens", a->skip_special_tokens, "Leave special tokens out of the text");
  cmd->callback([a] {
    const auto tok = tokenizer::Tokenizer::load(tokenizer_dir(a->tokenizer, a->engine));
    // An empty list is a valid request (and decodes to nothing).
    const auto ids = a->ids.empty() ? std::vector<int32_t>{} : parse_id_list(a->ids, "--ids");
    const std::string text = tok->decode(ids, a->skip_special_tokens);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
  });
}

void add_chat(CLI::App& app) {
  struct Args : TokenizerArgs {
    std::string messages;
    bool add_generation_prompt = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("chat", "Render a conversation with the model's chat template");
  add_tokenizer_options(cmd, *a);
  cmd->add_option("--messages", a->messages, "JSON file: [{\"role\": ..., \"content\": ...}, ...]")->required();
  cmd->add_flag("--add-generation-prompt", a->add_generation_prompt, "End with the assistant's turn header");
  cmd->callback([a] {
    const auto settings = tokenizer::ChatSettings::load(tokenizer_dir(a->tokenizer, a->engine));
    const std::string prompt =
        tokenizer::apply_chat_template(settings, read_messages(a->messages), a->add_generation_prompt);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  });
}

}  // namespace

void add_tokenizer_commands(CLI::App& app) {
  add_tokenize(app);
  add_detokenize(app);
  add_chat(app);
}

}  // namespace kiln::cli
