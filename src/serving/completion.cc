#include "serving/completion.h"

#include <chrono>

#include "core/error.h"

namespace kiln::serving {

CompletionResult run_completion(ServingContext& ctx, CompletionRequest request, const DeltaSink& sink,
                                const std::function<bool()>& client_gone) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  CompletionResult result;
  request.job.prompt = ctx.tokenizer.encode(request.prompt, /*add_special_tokens=*/!request.chat_rendered);
  result.prompt_tokens = static_cast<int64_t>(request.job.prompt.size());
  std::shared_ptr<Job> job;
  try {
    job = ctx.service.submit(request.job);
  } catch (const Error& e) {
    throw ApiError{400, e.what()};
  }
  if (!job) {
    if (!ctx.service.accepting()) {
      throw ApiError{503, "the server is shutting down and takes no new requests; retry on another replica"};
    }
    throw ApiError{503, "the server is at capacity (request queue full); retry later"};
  }

  TextStreamer streamer(ctx.tokenizer, request.stop);
  auto last_token = Clock::now();
  bool first = true;
  for (;;) {
    Job::Update u = job->take(std::chrono::milliseconds(50));
    std::vector<TokenDetail> fresh;
    std::string delta;
    for (std::size_t i = 0; i < u.tokens.size() && !streamer.stopped(); ++i) {
      const auto now = Clock::now();
      if (first) {
        ctx.metrics.time_to_first_token(std::chrono::duration<double>(now - start).count());
        first = false;
      } else {
        ctx.metrics.inter_token_latency(std::chrono::duration<double>(now - last_token).count());
      }
      last_token = now;
      delta += streamer.push(u.tokens[i], u.logprobs[i]);
      fresh.push_back(streamer.tokens().back());
    }
    const bool done = u.finished || streamer.stopped();
    if (streamer.stopped()) {
      ctx.service.cancel(job);  // stop string: the slot is free at the next step
      result.finish_reason = "stop_sequence";
    } else if (u.finished) {
      if (u.finish_reason == "error") {
        result.finish_reason = "error";
        result.error = "generation failed: " + u.error;
      } else {
        result.finish_reason = u.finish_reason == "eos" ? "eos_token" : u.finish_reason;
        delta += streamer.finish();
      }
    }
    if ((!delta.empty() || !fresh.empty()) && !sink(delta, fresh)) {
      ctx.service.cancel(job);
      result.client_gone = true;
      result.finish_reason = "cancelled";
      break;
    }
    if (done) break;
    if (u.tokens.empty() && client_gone && client_gone()) {
      ctx.service.cancel(job);
      result.client_gone = true;
      result.finish_reason = "cancelled";
      break;
    }
  }
  result.text = streamer.text();
  result.tokens = streamer.tokens();
  ctx.metrics.tokens(result.prompt_tokens, static_cast<int64_t>(result.tokens.size()));
  return result;
}

CompletionResult complete(ServingContext& ctx, CompletionRequest request, HttpResponse& response) {
  auto result = run_completion(
      ctx, std::move(request), [](auto, auto&) { return true; }, [&] { return response.client_gone(); });
  if (result.finish_reason == "error") throw ApiError{500, result.error};
  return result;
}

CompletionResult stream_completion(ServingContext& ctx, CompletionRequest request, HttpResponse& response,
                                   const StreamFormat& format) {
  StreamedSoFar sent;
  bool started = false;
  const auto start = [&] {
    if (started) return;
    started = true;
    response.start_stream(200, format.content_type, format.headers);
    if (format.on_start) format.on_start();
  };
  // Ends a started stream in the route's format; the error then reaches the metrics.
  const auto fail = [&](const ApiError& e) {
    format.write_error(e, sent);
    response.end_stream();
    throw e;
  };
  CompletionResult result;
  try {
    result = run_completion(
        ctx, std::move(request),
        [&](std::string_view delta, const std::vector<TokenDetail>& tokens) {
          start();
          sent.text += delta;
          sent.tokens += static_cast<int64_t>(tokens.size());
          return format.sink(delta, tokens);
        },
        [&] { return response.client_gone(); });
  } catch (const ApiError& e) {
    if (!started) throw;
    fail(e);
  } catch (const std::exception& e) {
    if (!started) throw;
    fail(ApiError{500, std::string("internal error: ") + e.what()});
  }
  if (result.client_gone) return result;
  if (result.finish_reason == "error") {
    if (!started) throw ApiError{500, result.error};
    fail(ApiError{500, result.error});
  }
  start();  // nothing was streamed yet (a stop string at once): the stream still has a last item
  return result;
}

}  // namespace kiln::serving
