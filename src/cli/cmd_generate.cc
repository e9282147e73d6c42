// kiln generate: run an engine on token ids.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_session.h"
#include "core/error.h"
#include "core/log.h"

namespace kiln::cli {
namespace {

struct GenerateArgs {
  std::string engine, input_ids;
  int64_t max_new_tokens = 32;
  bool greedy = false, json = false, ignore_eos = false;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  uint64_t seed = 0;
};

void run_generate(const GenerateArgs& a) {
  runtime::GenerationRequest request;
  request.prompt = parse_id_list(a.input_ids, "--input-ids");
  request.max_new_tokens = a.max_new_tokens;
  request.stop_at_eos = !a.ignore_eos;
  const bool sampling = a.temperature || a.top_k || a.top_p;
  if (a.greedy && sampling) throw_error("--greedy cannot be combined with --temperature, --top-k or --top-p");
  request.sampling.greedy = !sampling;
  request.sampling.temperature = a.temperature.value_or(1.0);
  request.sampling.top_k = a.top_k.value_or(0);
  request.sampling.top_p = a.top_p.value_or(1.0);
  request.sampling.seed = a.seed;

  auto session = EngineSession::open(a.engine);
  const auto start = std::chrono::steady_clock::now();
  const auto results = session->generator->generate({request});
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
    std::printf("%s\n", out.dump().c_str());
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
  cmd->add_option("--input-ids", a->input_ids, "Prompt token ids, comma-separated (e.g. 1,2,3)")->required();
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Most tokens to generate (default 32)");
  cmd->add_flag("--greedy", a->greedy, "Pick the most likely token each step (the default)");
  cmd->add_option("--temperature", a->temperature, "Sample with this temperature (> 0)");
  cmd->add_option("--top-k", a->top_k, "Sample among the k most likely tokens");
  cmd->add_option("--top-p", a->top_p, "Sample from the smallest set with this total probability");
  cmd->add_option("--seed", a->seed, "Random seed for sampling (default 0)");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--json", a->json, "Print one JSON object with output_ids and timings");
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace kiln::cli
