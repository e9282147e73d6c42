// kiln bench: load time, batch-1 decode speed, batched throughput and
// long-prompt time to first token of an engine, on random prompts
// (docs/benchmarks.md).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "cli/commands.h"
#include "cli/engine_session.h"
#include "core/error.h"
#include "core/log.h"

namespace kiln::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string engine, batches = "1,16,64", json;
  int64_t input_len = 128, output_len = 128, ttft_len = 2048;
  std::optional<double> roofline_gbps;
  uint64_t seed = 0;
  bool no_verify_weights = false;
};

// "1,16,64" -> {1, 16, 64}; empty string when valid, else what is wrong (CLI11 names the option).
std::string parse_batches(const std::string& text, std::vector<int64_t>* out) {
  std::string bad;
  auto sizes = parse_int_list(text, &bad);
  if (sizes) {
    for (const int64_t v : *sizes) {
      if (v < 1) {
        bad = std::to_string(v);
        sizes.reset();
        break;
      }
    }
  }
  if (!sizes) return "'" + bad + "' is not a batch size (expected positive integers, e.g. 1,16,64)";
  if (out) *out = std::move(*sizes);
  return "";
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One generate() call, timed: when it started and ended, and when each request's tokens came.
struct TimedRun {
  Clock::time_point start, end;
  std::vector<Clock::time_point> first, last;
  std::vector<int64_t> tokens;

  double wall() const { return seconds_between(start, end); }
  int64_t total_tokens() const {
    int64_t n = 0;
    for (int64_t t : tokens) n += t;
    return n;
  }
  double ttft(std::size_t i) const { return seconds_between(start, first[i]); }
  // Tokens after the first, over the time between the first and the last: the decode rate.
  double decode_rate(std::size_t i) const {
    const double s = seconds_between(first[i], last[i]);
    return tokens[i] > 1 && s > 0 ? static_cast<double>(tokens[i] - 1) / s : 0.0;
  }
};

class Bench {
 public:
  Bench(EngineSession& session, uint64_t seed) : s_(session), limits_(session.engine.manifest().limits), rng_(seed) {}

  std::vector<int32_t> random_prompt(int64_t len) {
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(s_.generator->spec().vocab_size - 1));
    std::vector<int32_t> p(static_cast<std::size_t>(len));
    for (auto& t : p) t = id(rng_);
    return p;
  }

  TimedRun run(std::size_t count, int64_t input_len, int64_t new_tokens) {
    std::vector<runtime::GenerationRequest> requests(count);
    for (auto& r : requests) {
      r.prompt = random_prompt(input_len);
      r.max_new_tokens = new_tokens;
      r.stop_at_eos = false;
      r.sampling.greedy = true;
    }
    TimedRun t;
    t.first.resize(count);
    t.last.resize(count);
    t.tokens.assign(count, 0);
    t.start = Clock::now();
    s_.generator->generate(requests, /*record_logits=*/false, [&](std::size_t i, int32_t) {
      const auto now = Clock::now();
      if (t.tokens[i]++ == 0) t.first[i] = now;
      t.last[i] = now;
    });
    t.end = Clock::now();
    return t;
  }

  // Why `input_len` prompt tokens plus `output_len` new ones cannot run on this engine, or "".
  std::string unfit(int64_t input_len, int64_t output_len) const {
    if (input_len > limits_.max_input_len) {
      return concat(input_len, " prompt tokens exceed the engine's max_input_len ", limits_.max_input_len);
    }
    if (output_len > limits_.max_output_len) {
      return concat(output_len, " new tokens exceed the engine's max_output_len ", limits_.max_output_len);
    }
    return "";
  }

  const engine::Limits& limits() const { return limits_; }

 private:
  EngineSession& s_;
  engine::Limits limits_;
  std::mt19937_64 rng_;
};

void skipped(nlohmann::json& entry, const std::string& what, const std::string& why) {
  log_warn("bench: skipping ", what, ": ", why);
  entry["skipped"] = why;
}

void run_bench(const BenchArgs& a) {
  std::vector<int64_t> batches;
  parse_batches(a.batches, &batches);  // validated by the option's check

  log_info("bench: loading ", a.engine);
  auto session = EngineSession::open(a.engine, !a.no_verify_weights);
  const engine::Manifest& m = session->engine.manifest();
  Bench bench(*session, a.seed);
  const engine::Limits& limits = bench.limits();

  // Bytes of every tensor, and of those a decode step reads (the embedding and
  // learned-position tables are only indexed, unless the LM head shares the embedding).
  uint64_t weight_bytes = 0, read_bytes = 0;
  for (const auto& rank : m.ranks) {
    for (const auto& t : rank.tensors) {
      weight_bytes += t.nbytes;
      const bool indexed =
          (t.name == tensor_names::kEmbed && !m.spec.tied_embeddings) || t.name == tensor_names::kPosEmbed;
      if (!indexed) read_bytes += t.nbytes;
    }
  }

  nlohmann::json out = {
      {"engine", a.engine},
      {"family", m.spec.family},
      {"dtype", std::string(dtype_name(m.dtype))},
      {"tensor_parallel", m.tensor_parallel},
      {"target", m.target.describe()},
      {"limits",
       {{"max_batch_size", limits.max_batch_size},
        {"max_input_len", limits.max_input_len},
        {"max_output_len", limits.max_output_len},
        {"max_num_tokens", limits.max_num_tokens}}},
      {"input_len", a.input_len},
      {"output_len", a.output_len},
      {"seed", a.seed},
      {"load_seconds", session->load_seconds},
      {"weight_bytes", weight_bytes},
      {"decode_read_bytes", read_bytes},
  };
  log_info("bench: loaded in ", session->load_seconds, " s; ", weight_bytes, " weight bytes");

  // Warm-up: touch the weights and size the caches once before anything is timed.
  {
    const int64_t in = std::min(a.input_len, limits.max_input_len);
    const int64_t new_tokens = std::min<int64_t>(8, limits.max_output_len);
    log_info("bench: warm-up, ", in, " prompt + ", new_tokens, " new tokens");
    bench.run(1, in, new_tokens);
  }

  // Batch-1 decode.
  nlohmann::json decode = {{"batch", 1}, {"input_len", a.input_len}, {"output_len", a.output_len}};
  std::optional<double> decode_rate;
  if (const std::string why = bench.unfit(a.input_len, a.output_len); !why.empty()) {
    skipped(decode, "batch-1 decode", why);
  } else {
    log_info("bench: batch-1 decode, ", a.input_len, " prompt + ", a.output_len, " new tokens");
    const TimedRun t = bench.run(1, a.input_len, a.output_len);
    decode_rate = t.decode_rate(0);
    decode["output_tokens"] = t.total_tokens();
    decode["seconds"] = t.wall();
    decode["ttft_seconds"] = t.ttft(0);
    decode["decode_seconds"] = seconds_between(t.first[0], t.last[0]);
    decode["tokens_per_second"] = *decode_rate;
    log_info("bench: ttft ", t.ttft(0) * 1e3, " ms, decode ", *decode_rate, " tokens/s");
  }
  out["decode"] = decode;

  // Throughput at each batch size.
  nlohmann::json throughput = nlohmann::json::array();
  for (int64_t batch : batches) {
    const int64_t concurrent = std::min(batch, limits.max_batch_size);
    nlohmann::json row = {{"batch", batch}, {"concurrent_batch", concurrent}};
    if (const std::string why = bench.unfit(a.input_len, a.output_len); !why.empty()) {
      skipped(row, concat("batch ", batch), why);
    } else {
      // Untimed first: the step shapes this batch brings (prefill chunks, decode at
      // this batch size) load their kernels (CUDA loads each on first use) and
      // record their graphs, as a server's first requests would.
      bench.run(static_cast<std::size_t>(concurrent), a.input_len, 3);
      log_info("bench: batch ", batch, " (", concurrent, " concurrent), ", a.input_len, " prompt + ", a.output_len,
               " new tokens each");
      const TimedRun t = bench.run(static_cast<std::size_t>(batch), a.input_len, a.output_len);
      double rate_sum = 0, ttft_sum = 0;
      for (std::size_t i = 0; i < t.tokens.size(); ++i) {
        rate_sum += t.decode_rate(i);
        ttft_sum += t.ttft(i);
      }
      const double rate = static_cast<double>(t.total_tokens()) / t.wall();
      row["output_tokens"] = t.total_tokens();
      row["seconds"] = t.wall();
      row["output_tokens_per_second"] = rate;
      row["per_sequence_tokens_per_second"] = rate_sum / static_cast<double>(batch);
      row["mean_ttft_seconds"] = ttft_sum / static_cast<double>(batch);
      log_info("bench: batch ", batch, ": ", rate, " output tokens/s in ", t.wall(), " s");
    }
    throughput.push_back(row);
  }
  out["throughput"] = throughput;

  // Long-prompt time to first token: the whole prompt prefilled (in chunks of
  // max_num_tokens) and one token chosen.
  nlohmann::json long_ttft = {{"input_len", a.ttft_len}};
  if (a.ttft_len == 0) {
    long_ttft["skipped"] = "--ttft-len 0";
  } else if (const std::string why = bench.unfit(a.ttft_len, 1); !why.empty()) {
    skipped(long_ttft, "long-prompt ttft", why);
  } else {
    log_info("bench: time to first token, ", a.ttft_len, " prompt tokens");
    bench.run(1, a.ttft_len, 1);  // untimed first, as above
    const TimedRun t = bench.run(1, a.ttft_len, 1);
    long_ttft["output_tokens"] = t.total_tokens();
    long_ttft["ttft_seconds"] = t.wall();
    long_ttft["prompt_tokens_per_second"] = static_cast<double>(a.ttft_len) / t.wall();
    log_info("bench: ttft ", t.wall() * 1e3, " ms");
  }
  out["long_prompt_ttft"] = long_ttft;

  // Batch-1 decode against the bandwidth roofline: every weight byte read once per token.
  std::optional<double> ratio;
  if (a.roofline_gbps) {
    out["roofline_gbps"] = *a.roofline_gbps;
    const double roofline = *a.roofline_gbps * 1e9 / static_cast<double>(weight_bytes);
    out["roofline_tokens_per_second"] = roofline;
    if (decode_rate) {
      ratio = *decode_rate / roofline;
      out["roofline_ratio"] = *ratio;
    }
  }

  // The table.
  std::printf("engine            %s (%s, %s, tp %d, %s)\n", a.engine.c_str(), m.spec.family.c_str(),
              std::string(dtype_name(m.dtype)).c_str(), m.tensor_parallel, m.target.describe().c_str());
  std::printf("limits            batch %lld, input %lld, output %lld, tokens/step %lld\n",
              (long long)limits.max_batch_size, (long long)limits.max_input_len, (long long)limits.max_output_len,
              (long long)limits.max_num_tokens);
  std::printf("weights           %llu bytes (%.2f MiB); %llu read per decode step\n", (unsigned long long)weight_bytes,
              static_cast<double>(weight_bytes) / (1 << 20), (unsigned long long)read_bytes);
  std::printf("load              %.3f s\n", session->load_seconds);
  std::printf("\nbatch-1 decode    %lld prompt + %lld new tokens, greedy\n", (long long)a.input_len,
              (long long)a.output_len);
  if (decode.contains("skipped")) {
    std::printf("  skipped         %s\n", decode["skipped"].get<std::string>().c_str());
  } else {
    std::printf("  ttft            %.2f ms\n", decode["ttft_seconds"].get<double>() * 1e3);
    std::printf("  decode          %.2f tokens/s\n", *decode_rate);
  }
  if (a.roofline_gbps) {
    std::printf("  roofline        %.2f tokens/s at %g GB/s\n", out["roofline_tokens_per_second"].get<double>(),
                *a.roofline_gbps);
    if (ratio) std::printf("  roofline_ratio  %.3f\n", *ratio);
  }
  std::printf("\nthroughput        %lld prompt + %lld new tokens per request\n", (long long)a.input_len,
              (long long)a.output_len);
  std::printf("  %7s %10s %13s %10s %14s %16s %10s\n", "batch", "concurrent", "output tokens", "seconds",
              "output tok/s", "per-seq tok/s", "ttft ms");
  for (const auto& row : throughput) {
    if (row.contains("skipped")) {
      std::printf("  %7lld skipped: %s\n", (long long)row["batch"].get<int64_t>(),
                  row["skipped"].get<std::string>().c_str());
      continue;
    }
    std::printf("  %7lld %10lld %13lld %10.3f %14.2f %16.2f %10.2f\n", (long long)row["batch"].get<int64_t>(),
                (long long)row["concurrent_batch"].get<int64_t>(), (long long)row["output_tokens"].get<int64_t>(),
                row["seconds"].get<double>(), row["output_tokens_per_second"].get<double>(),
                row["per_sequence_tokens_per_second"].get<double>(), row["mean_ttft_seconds"].get<double>() * 1e3);
  }
  std::printf("\nlong-prompt ttft  %lld prompt tokens, 1 new token\n", (long long)a.ttft_len);
  if (long_ttft.contains("skipped")) {
    std::printf("  skipped         %s\n", long_ttft["skipped"].get<std::string>().c_str());
  } else {
    std::printf("  ttft            %.2f ms (%.1f prompt tokens/s)\n", long_ttft["ttft_seconds"].get<double>() * 1e3,
                long_ttft["prompt_tokens_per_second"].get<double>());
  }
  std::fflush(stdout);

  if (!a.json.empty()) {
    std::ofstream file(a.json);
    file << out.dump(2) << "\n";
    if (!file) throw_error("--json: cannot write ", a.json);
    log_info("bench: wrote ", a.json);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure an engine: load time, batch-1 decode (time to first token, tokens/s), throughput at several batch "
      "sizes and long-prompt time to first token, on random prompts with greedy decoding. Progress goes to stderr, a "
      "table to stdout (docs/benchmarks.md)");
  cmd->add_option("engine", a->engine, "Engine directory")->required();
  cmd->add_option("--input-len", a->input_len, "Prompt tokens of each request (random ids; default 128)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--output-len", a->output_len,
                  "New tokens generated by each request, past any end-of-sequence token (default 128; at least 2)")
      ->check(CLI::Validator(
          [](std::string& v) {
            int64_t n = 0;
            const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            return ec == std::errc() && ptr == v.data() + v.size() && n >= 2 ? "" : "must be an integer of at least 2";
          },
          "AT LEAST 2", "at least 2"));
  cmd->add_option("--batches", a->batches,
                  "Comma-separated batch sizes for the throughput runs: that many requests submitted at once, run at "
                  "most max_batch_size at a time (default 1,16,64)")
      ->check(CLI::Validator([](std::string& s) { return parse_batches(s, nullptr); }, "SIZES", "batch sizes"));
  cmd->add_option("--ttft-len", a->ttft_len,
                  "Prompt tokens of the long-prompt time-to-first-token run (default 2048; skipped when over the "
                  "engine's max_input_len; 0 skips it)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--roofline-gbps", a->roofline_gbps,
                  "Memory bandwidth in GB/s: also report batch-1 decode tokens/s over the bandwidth roofline "
                  "(GB/s * 1e9 / weight bytes) as roofline_ratio")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->seed, "Seed of the random prompts (default 0)");
  cmd->add_option("--json", a->json, "Also write every number as one JSON object to this file");
  cmd->add_flag("--no-verify-weights", a->no_verify_weights, "Load without checking the blobs' checksums");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace kiln::cli
