// One text-generation request end to end, whichever API it came through:
// submit to the engine loop, stream text (stop strings, detokenization),
// notice a departed client and cancel at once, record metrics.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "serving/engine_service.h"
#include "serving/metrics.h"
#include "serving/text_streamer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kiln::serving {

// What every route handler needs.
struct ServingContext {
  EngineService& service;
  const tokenizer::Tokenizer& tokenizer;
  const tokenizer::ChatSettings& chat;
  Metrics& metrics;
  std::string model_name;
  int64_t default_max_new_tokens = 256;
};

// A request's error, with the HTTP status it deserves.
struct ApiError {
  int status;
  std::string message;
};

struct CompletionRequest {
  std::string prompt;  // text; encoded with special tokens unless `chat_rendered`
  bool chat_rendered = false;
  JobRequest job;  // prompt ids filled in by run_completion
  std::vector<std::string> stop;
};

struct CompletionResult {
  std::string text;
  std::vector<TokenDetail> tokens;
  std::string finish_reason;  // "length", "eos_token", "stop_sequence", "cancelled"
  int64_t prompt_tokens = 0;
  bool client_gone = false;
};

// Called with each piece of final text and the tokens that produced it;
// returning false means the client is gone: the job is cancelled.
using DeltaSink = std::function<bool(std::string_view text, const std::vector<TokenDetail>& new_tokens)>;

// Throws ApiError: 400 for a request the engine refuses, 503 when the queue is full.
// `client_gone` is polled while no token arrives.
CompletionResult run_completion(ServingContext& ctx, CompletionRequest request, const DeltaSink& sink,
                                const std::function<bool()>& client_gone);

}  // namespace kiln::serving
