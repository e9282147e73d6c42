#include "serving/metrics.h"

#include <sstream>

namespace kiln::serving {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::ostringstream s;
  s << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    s << name << "_bucket{le=\"" << bounds_[i] << "\"} " << cumulative << '\n';
  }
  s << name << "_bucket{le=\"+Inf\"} " << count_ << '\n' << name << "_sum " << sum_ << '\n';
  s << name << "_count " << count_ << '\n';
  out += s.str();
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::request_done(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::tokens(int64_t prompt_tokens, int64_t generated_tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
}

void Metrics::time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(seconds);
}

void Metrics::inter_token_latency(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  itl_.observe(seconds);
}

std::string Metrics::render(const EngineStats& engine, int64_t max_batch_size) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream s;
  s << "# HELP kiln_requests_total Requests answered, by route and HTTP status.\n"
    << "# TYPE kiln_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    s << "kiln_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
  }
  s << "# HELP kiln_prompt_tokens_total Prompt tokens received.\n# TYPE kiln_prompt_tokens_total counter\n"
    << "kiln_prompt_tokens_total " << prompt_tokens_ << '\n'
    << "# HELP kiln_generated_tokens_total Tokens generated.\n# TYPE kiln_generated_tokens_total counter\n"
    << "kiln_generated_tokens_total " << generated_tokens_ << '\n'
    << "# HELP kiln_engine_tokens_total Tokens the engine generated, with those of requests whose clients left.\n"
    << "# TYPE kiln_engine_tokens_total counter\nkiln_engine_tokens_total " << engine.tokens << '\n'
    << "# HELP kiln_batch_occupancy Running sequences over max_rolling_batch_size.\n"
    << "# TYPE kiln_batch_occupancy gauge\nkiln_batch_occupancy "
    << (max_batch_size ? static_cast<double>(engine.running) / static_cast<double>(max_batch_size) : 0) << '\n'
    << "# HELP kiln_running_sequences Sequences in the running batch.\n# TYPE kiln_running_sequences gauge\n"
    << "kiln_running_sequences " << engine.running << '\n'
    << "# HELP kiln_queue_length Requests waiting for a batch slot.\n# TYPE kiln_queue_length gauge\n"
    << "kiln_queue_length " << engine.waiting << '\n'
    << "# HELP kiln_kv_cache_usage Fraction of KV cache blocks in use.\n# TYPE kiln_kv_cache_usage gauge\n"
    << "kiln_kv_cache_usage "
    << (engine.kv_blocks_total ? static_cast<double>(engine.kv_blocks_total - engine.kv_blocks_free) /
                                     static_cast<double>(engine.kv_blocks_total)
                               : 0)
    << '\n'
    << "# HELP kiln_preemptions_total Sequences preempted for KV cache room.\n"
    << "# TYPE kiln_preemptions_total counter\nkiln_preemptions_total " << engine.preemptions << '\n';
  std::string out = s.str();
  ttft_.render(out, "kiln_time_to_first_token_seconds", "Time from request to first generated token.");
  itl_.render(out, "kiln_inter_token_latency_seconds", "Time between consecutive generated tokens.");
  return out;
}

}  // namespace kiln::serving
