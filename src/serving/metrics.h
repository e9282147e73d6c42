// Prometheus metrics of `kiln serve` (GET /metrics, text format 0.0.4):
// requests by route and status, tokens in and out, time to first token and
// inter-token latency histograms, and gauges for batch occupancy, KV cache use
// and queue length read from the engine loop when scraped.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "serving/engine_service.h"

namespace kiln::serving {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request_done(const std::string& route, int status);
  void tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void time_to_first_token(double seconds);
  void inter_token_latency(double seconds);
  std::string render(const EngineStats& engine, int64_t max_batch_size) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_;
};

}  // namespace kiln::serving
