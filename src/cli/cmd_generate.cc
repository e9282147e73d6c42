// kiln generate: run an engine on token ids.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/engine_session.h"
#include "cli/text_io.h"
#include "core/error.h"
#include "core/log.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kiln::cli {
namespace {

struct GenerateArgs {
  std::string engine, input_ids, prompt, chat;
  int64_t max_new_tokens = 32;
  bool greedy = false, json = false, ignore_eos = false, no_verify_weights = false;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
};

// The prompt's token ids and, for text prompts, the tokenizer that made them.
struct Prompt {
  std::vector<int32_t> ids;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

Prompt make_prompt(const GenerateArgs& a) {
  const int given = !a.input_ids.empty() + !a.prompt.empty() + !a.chat.empty();
  if (given != 1) throw_error("give exactly one of --input-ids, --prompt and --chat");
  Prompt p;
  if (!a.input_ids.empty()) {
    p.ids = parse_id_list(a.input_ids, "--input-ids");
    return p;
  }
  const auto dir = tokenizer_dir("", a.engine);
  p.tokenizer = tokenizer::Tokenizer::load(dir);
  if (!a.prompt.empty()) {
    p.ids = p.tokenizer->encode(a.prompt, /*add_special_tokens=*/true);  // as HF's tokenizer(prompt)
  } else {
    // The rendered template carries its own special tokens, as apply_chat_template(tokenize=True).
    const auto settings = tokenizer::ChatSettings::load(dir);
    const std::string text = tokenizer::apply_chat_template(settings, read_messages(a.chat), true);
    p.ids = p.tokenizer->encode(text, /*add_special_tokens=*/false);
  }
  return p;
}

void run_generate(const GenerateArgs& a) {
  runtime::GenerationRequest request;
  Prompt prompt = make_prompt(a);
  request.prompt = prompt.ids;
  request.max_new_tokens = a.max_new_tokens;
  request.stop_at_eos = !a.ignore_eos;
  const bool sampling = a.temperature || a.top_k || a.top_p;
  if (a.greedy && sampling) throw_error("--greedy cannot be combined with --temperature, --top-k or --top-p");
  request.sampling.greedy = !sampling;
  request.sampling.temperature = a.temperature.value_or(1.0);
  request.sampling.top_k = a.top_k.value_or(0);
  request.sampling.top_p = a.top_p.value_or(1.0);
  request.sampling.seed = a.seed;
  request.sampling.repetition_penalty = a.repetition_penalty;

  auto session = EngineSession::open(a.engine, !a.no_verify_weights);
  // Text prompts stream their continuation as it is produced (special tokens left out).
  std::optional<tokenizer::IncrementalDetokenizer> stream;
  if (prompt.tokenizer && !a.json) stream.emplace(*prompt.tokenizer, /*skip_special_tokens=*/true);
  auto print = [](const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  const auto results = session->generator->generate({request}, false, [&](std::size_t, int32_t token) {
    if (stream) print(stream->push(token));
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& r = results.at(0);
  const double rate = static_cast<double>(r.tokens.size()) / seconds;
  if (a.json) {
    nlohmann::json out = {{"output_ids", r.tokens},
                          {"finish_reason", r.finish_reason},
                          {"prompt_tokens", request.prompt.size()},
                          {"generated_tokens", r.tokens.size()},
                          {"load_seconds", session->load_seconds},
                          {"seconds", seconds},
                          {"tokens_per_second", rate}};
    if (prompt.tokenizer) out["text"] = prompt.tokenizer->decode(r.tokens, /*skip_special_tokens=*/true);
    std::printf("%s\n", out.dump().c_str());
  } else if (stream) {
    print(stream->finish() + "\n");
    log_info(r.tokens.size(), " tokens (", r.finish_reason, ") in ", seconds, " s: ", rate, " tokens/s");
  } else {
    std::string ids;
    for (int32_t t : r.tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
    std::printf("%s\n", ids.c_str());
    log_info(r.tokens.size(), " tokens (", r.finish_reason, ") in ", seconds, " s: ", rate, " tokens/s");
  }
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate tokens with an engine");
  cmd->add_option("--engine", a->engine, "Engine directory")->required();
  cmd->add_option("--input-ids", a->input_ids, "Prompt token ids, comma-separated (e.g. 1,2,3)");
  cmd->add_option("--prompt", a->prompt, "Prompt text (tokenized with the engine's tokenizer; output streams as text)");
  cmd->add_option("--chat", a->chat, "JSON file of chat messages, rendered with the model's chat template");
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Most tokens to generate (default 32)");
  cmd->add_flag("--greedy", a->greedy, "Pick the most likely token each step (the default)");
  cmd->add_option("--temperature", a->temperature, "Sample with this temperature (> 0)");
  cmd->add_option("--top-k", a->top_k, "Sample among the k most likely tokens");
  cmd->add_option("--top-p", a->top_p, "Sample from the smallest set with this total probability");
  cmd->add_option("--seed", a->seed, "Random seed for sampling (default 0)");
  cmd->add_option("--repetition-penalty", a->repetition_penalty,
                  "Divide positive (multiply negative) logits of tokens already in the sequence by this, as "
                  "HuggingFace does (default 1: off)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--json", a->json, "Print one JSON object with output_ids and timings");
  cmd->add_flag("--no-verify-weights", a->no_verify_weights, "Load without checking the blobs' checksums");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace kiln::cli
