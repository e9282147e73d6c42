// kiln perplexity: how well an engine predicts a text, and with a base engine
// how far its next-token distributions are from the base's, the figures by
// which a quantized engine is compared with its 16-bit original (llama.cpp's
// perplexity tool reports the same).
//
// The text is tokenized whole (no special tokens) and cut into chunks of
// --context tokens, each led by the tokens the tokenizer puts before any
// text (a BOS, where it has one); each chunk is scored in one teacher-forced
// forward, and only the predictions of its second half count, so that every
// scored token has at least half a chunk of context. A text shorter than one
// chunk is one shorter chunk.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_session.h"
#include "cli/logit_agreement.h"
#include "cli/text_io.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace kiln::cli {
namespace {

struct PerplexityArgs {
  std::string engine, text, base;
  int64_t context = 0;
  bool json = false, no_verify_weights = false;
};

// -log softmax(logits)[token], in float64.
double negative_log_likelihood(const float* logits, int64_t vocab, int32_t token) {
  const double m = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - m);
  return m + std::log(sum) - logits[token];
}

struct NllStats {
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  void add(double v) { sum += v, sum_sq += v * v, ++n; }
  double mean() const { return sum / static_cast<double>(n); }
  double perplexity() const { return std::exp(mean()); }
  // Standard error of the perplexity (delta method: exp(mean) x stderr(mean)).
  double perplexity_stderr() const {
    if (n < 2) return 0;
    const double var = (sum_sq - sum * sum / static_cast<double>(n)) / static_cast<double>(n - 1);
    return perplexity() * std::sqrt(std::max(var, 0.0) / static_cast<double>(n));
  }
};

void run_perplexity(const PerplexityArgs& a) {
  auto session = EngineSession::open(a.engine, !a.no_verify_weights);
  const auto& m = session->engine.manifest();
  const int64_t V = m.spec.vocab_size;
  std::unique_ptr<EngineSession> base;
  if (!a.base.empty()) {
    base = EngineSession::open(a.base, !a.no_verify_weights);
    if (base->engine.manifest().spec.vocab_size != V) {
      throw_error("--kl-divergence-base ", a.base, " has vocabulary ", base->engine.manifest().spec.vocab_size, " but ",
                  a.engine, " has ", V, ": the two engines must share a tokenizer");
    }
  }
  const int64_t max_len = std::min(m.limits.max_input_len, m.limits.max_num_tokens);
  const int64_t base_len =
      base ? std::min(base->engine.manifest().limits.max_input_len, base->engine.manifest().limits.max_num_tokens)
           : max_len;
  const int64_t limit = std::min(max_len, base_len);
  const int64_t context = a.context > 0 ? a.context : std::min<int64_t>(512, limit);
  if (context < 4) throw_error("--context must be at least 4, got ", context);
  if (context > limit) {
    throw_error("--context ", context, " exceeds what the engine", base ? "s take" : " takes", " in one forward (",
                limit, " tokens: max_input_len and max_num_tokens)");
  }

  const auto tok = tokenizer::Tokenizer::load(tokenizer_dir("", a.engine));
  const std::vector<int32_t> lead = tok->encode("", /*add_special_tokens=*/true);
  const std::vector<int32_t> ids = tok->encode(read_text_file(a.text, "--text"), /*add_special_tokens=*/false);
  const auto body = static_cast<std::size_t>(context) - lead.size();
  if (body < 3 || ids.size() < 3) throw_error(a.text, ": too short to score (", ids.size(), " tokens)");

  NllStats nll, base_nll;
  LogitAgreement agreement(0);  // every position whose base top-2 are not tied
  int64_t chunks = 0;
  // Whole chunks; the text's tail after the last whole chunk is not scored,
  // unless the text is shorter than one chunk.
  const std::size_t whole = std::max<std::size_t>(ids.size() / body, 1);
  for (std::size_t c = 0; c < whole; ++c) {
    std::vector<int32_t> chunk = lead;
    const std::size_t begin = c * body, end = std::min(ids.size(), begin + body);
    chunk.insert(chunk.end(), ids.begin() + static_cast<std::ptrdiff_t>(begin),
                 ids.begin() + static_cast<std::ptrdiff_t>(end));
    const auto logits = session->generator->score(chunk);
    std::vector<float> base_logits;
    if (base) base_logits = base->generator->score(chunk);
    // Row t predicts chunk[t + 1]: the second half's predictions count.
    for (std::size_t t = chunk.size() / 2; t + 1 < chunk.size(); ++t) {
      const float* row = logits.data() + static_cast<int64_t>(t) * V;
      nll.add(negative_log_likelihood(row, V, chunk[t + 1]));
      if (base) {
        const float* base_row = base_logits.data() + static_cast<int64_t>(t) * V;
        base_nll.add(negative_log_likelihood(base_row, V, chunk[t + 1]));
        agreement.add(row, base_row, V);
      }
    }
    ++chunks;
  }

  if (a.json) {
    nlohmann::json out = {{"engine", a.engine},
                          {"text", a.text},
                          {"tokens", ids.size()},
                          {"context", context},
                          {"chunks", chunks},
                          {"scored", nll.n},
                          {"perplexity", nll.perplexity()},
                          {"perplexity_stderr", nll.perplexity_stderr()}};
    if (base) {
      out["base"] = {{"engine", a.base},
                     {"perplexity", base_nll.perplexity()},
                     {"perplexity_stderr", base_nll.perplexity_stderr()},
                     {"kl_mean", agreement.kl_mean()},
                     {"kl_p99", agreement.kl_p99()},
                     {"kl_max", agreement.kl_max()},
                     {"top1_agreement", agreement.top1_share()}};
    }
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("%s: %zu tokens, %lld chunks of %lld, %lld predictions scored\n", a.text.c_str(), ids.size(),
              static_cast<long long>(chunks), static_cast<long long>(context), static_cast<long long>(nll.n));
  std::printf("perplexity %.4f +/- %.4f  (%s)\n", nll.perplexity(), nll.perplexity_stderr(), a.engine.c_str());
  if (base) {
    std::printf("perplexity %.4f +/- %.4f  (%s, base); ratio %.4f\n", base_nll.perplexity(),
                base_nll.perplexity_stderr(), a.base.c_str(), nll.perplexity() / base_nll.perplexity());
    std::printf("KL divergence from the base: mean %.4g, p99 %.4g, max %.4g | top-1 agreement %.2f%% (%lld/%lld)\n",
                agreement.kl_mean(), agreement.kl_p99(), agreement.kl_max(), 100 * agreement.top1_share(),
                static_cast<long long>(agreement.top1_agree()), static_cast<long long>(agreement.decisive()));
  }
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of an engine on a text; with --kl-divergence-base, the KL divergence and top-1 agreement of its "
      "next-token distributions with another engine's (a quantized engine against its 16-bit original)");
  cmd->add_option("--engine", a->engine, "Engine directory")->required();
  cmd->add_option("--text", a->text, "UTF-8 text file (tokenized whole with the engine's tokenizer)")->required();
  cmd->add_option("--kl-divergence-base", a->base,
                  "Engine to compare with, on the same chunks (same tokenizer); both are loaded at once");
  cmd->add_option("--context", a->context,
                  "Tokens per chunk; the second half of each chunk is scored (default: 512, or the engine's limit)");
  cmd->add_flag("--json", a->json, "One JSON object instead of the report");
  cmd->add_flag("--no-verify-weights", a->no_verify_weights, "Load without checking the blobs' checksums");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace kiln::cli
