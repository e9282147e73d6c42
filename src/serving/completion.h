// One text-generation request end to end, whichever API it came through:
// submit to the engine loop, stream text (stop strings, detokenization),
// notice a departed client and cancel at once, record metrics.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "serving/engine_service.h"
#include "serving/http_response.h"
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
  std::string finish_reason;  // "length", "eos_token", "stop_sequence", "cancelled", "error"
  std::string error;          // why, when finish_reason is "error" (the engine step failed)
  int64_t prompt_tokens = 0;
  bool client_gone = false;
};

// Called with each piece of final text and the tokens that produced it;
// returning false means the client is gone: the job is cancelled.
using DeltaSink = std::function<bool(std::string_view text, const std::vector<TokenDetail>& new_tokens)>;

// Throws ApiError before anything reaches `sink`: 400 for a request the engine
// refuses, 503 when the queue is full or the server is shutting down. A
// failure once the job runs is finish_reason "error" with the reason in
// `error`. `client_gone` is polled while no token arrives.
CompletionResult run_completion(ServingContext& ctx, CompletionRequest request, const DeltaSink& sink,
                                const std::function<bool()>& client_gone);

// What a stream had sent when it failed.
struct StreamedSoFar {
  std::string text;
  int64_t tokens = 0;
};

// How a route streams: the head (status 200, `content_type`, `headers`) and
// `on_start` go out with the first output, so that a refusal (400, 503) or a
// failure before it is answered with its own status; `sink` writes output;
// `write_error` ends a stream that fails after it started, in the route's
// format (an LMI last line, an SSE error event and [DONE]).
struct StreamFormat {
  std::string content_type;
  HttpHeaders headers;
  std::function<void()> on_start;
  DeltaSink sink;
  std::function<void(const ApiError&, const StreamedSoFar&)> write_error;
};

// Runs `request` as a stream in `format`. Returns with the stream open (the
// caller writes its last item and ends it) or the client gone; throws ApiError
// for a refusal or failure before the stream started (nothing was sent), and
// for a failure after it, once `write_error` has ended the stream.
CompletionResult stream_completion(ServingContext& ctx, CompletionRequest request, HttpResponse& response,
                                   const StreamFormat& format);
// For answers sent whole: the result, or ApiError 500 when generation failed.
CompletionResult complete(ServingContext& ctx, CompletionRequest request, HttpResponse& response);

}  // namespace kiln::serving
