#include "serving/openai_api.h"

#include <atomic>
#include <chrono>

#include "core/error.h"
#include "serving/request_params.h"

namespace kiln::serving {
namespace {

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  return std::string(prefix) + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" +
         std::to_string(++counter);
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

nlohmann::json parse_body(const HttpRequest& request) {
  auto body = parse_request_body(request.body);
  if (!body.is_object()) throw ApiError{400, "the request body must be a JSON object"};
  return body;
}

// Sampling as OpenAI defines it: temperature 1 by default, 0 meaning greedy.
void read_sampling(const nlohmann::json& body, CompletionRequest& r, int64_t default_max_tokens) {
  if (int_param(body, "n", 1) != 1) throw ApiError{400, "only n = 1 is supported"};
  if (number_param(body, "presence_penalty", 0) != 0 || number_param(body, "frequency_penalty", 0) != 0) {
    throw ApiError{400, "presence_penalty and frequency_penalty are not supported (use repetition_penalty)"};
  }
  r.job.max_new_tokens = int_param(body, "max_completion_tokens", int_param(body, "max_tokens", default_max_tokens));
  const double temperature = number_param(body, "temperature", 1.0);
  r.job.sampling.greedy = temperature == 0;
  r.job.sampling.temperature = temperature == 0 ? 1.0 : temperature;
  r.job.sampling.top_p = number_param(body, "top_p", 1.0);
  r.job.sampling.top_k = int_param(body, "top_k", 0);
  r.job.sampling.repetition_penalty = number_param(body, "repetition_penalty", 1.0);
  r.job.sampling.seed = static_cast<uint64_t>(int_param(body, "seed", 0));
  r.stop = stop_param(body, "stop");
}

// OpenAI's finish reasons: "stop" (end of sequence or a stop string) or "length".
std::string finish_reason(const CompletionResult& r) { return r.finish_reason == "length" ? "length" : "stop"; }

nlohmann::json usage(const CompletionResult& r) {
  const auto completion = static_cast<int64_t>(r.tokens.size());
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", completion},
          {"total_tokens", r.prompt_tokens + completion}};
}

// Runs `r` and answers as one JSON object or as server-sent events, building
// the API's objects with `chunk(delta, finish)` and `whole(result)`.
void respond(ServingContext& ctx, CompletionRequest r, bool stream, HttpResponse& response,
             const std::function<nlohmann::json(const std::string&, const nlohmann::json&)>& chunk,
             const std::function<nlohmann::json(const CompletionResult&)>& whole,
             const std::function<void()>& before_first = nullptr) {
  if (!stream) {
    const auto result = run_completion(
        ctx, std::move(r), [](auto, auto&) { return true; }, [&] { return response.client_gone(); });
    if (!result.client_gone) response.send_json(200, whole(result));
    return;
  }
  response.start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  if (before_first) before_first();
  const auto result = run_completion(
      ctx, std::move(r),
      [&](std::string_view delta, auto&) {
        return delta.empty() || response.write_event(chunk(std::string(delta), nullptr).dump());
      },
      [&] { return response.client_gone(); });
  if (result.client_gone) return;
  nlohmann::json last = chunk("", finish_reason(result));
  last["usage"] = usage(result);
  response.write_event(last.dump());
  response.write_event("[DONE]");
  response.end_stream();
}

}  // namespace

void handle_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response) {
  const auto body = parse_body(request);
  refuse_unknown_keys(body,
                      {"model", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n",
                       "stop", "stream", "stream_options", "seed", "user", "presence_penalty", "frequency_penalty",
                       "repetition_penalty", "logprobs", "echo"},
                      "the request");
  CompletionRequest r;
  const auto& prompt = body.value("prompt", nlohmann::json());
  if (prompt.is_string()) {
    r.prompt = prompt.get<std::string>();
  } else if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    r.prompt = prompt[0].get<std::string>();
  } else {
    throw ApiError{400, "\"prompt\" must be a string (or a list of one string)"};
  }
  if (bool_param(body, "echo", false)) throw ApiError{400, "echo is not supported"};
  read_sampling(body, r, 16);  // OpenAI's default max_tokens for completions
  const std::string id = new_id("cmpl-");
  const int64_t created = now_seconds();
  auto base = [&] {
    return nlohmann::json{{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", ctx.model_name}};
  };
  respond(
      ctx, std::move(r), bool_param(body, "stream", false), response,
      [&](const std::string& text, const nlohmann::json& finish) {
        auto c = base();
        c["choices"] = {{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}}};
        return c;
      },
      [&](const CompletionResult& result) {
        auto c = base();
        c["choices"] = {
            {{"index", 0}, {"text", result.text}, {"logprobs", nullptr}, {"finish_reason", finish_reason(result)}}};
        c["usage"] = usage(result);
        return c;
      });
}

void answer_chat(ServingContext& ctx, const nlohmann::json& body, HttpResponse& response) {
  refuse_unknown_keys(body,
                      {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n",
                       "stop", "stream", "stream_options", "seed", "user", "presence_penalty", "frequency_penalty",
                       "repetition_penalty", "logprobs", "parameters"},
                      "the request");
  const auto& messages = body.at("messages");
  if (!messages.is_array() || messages.empty()) throw ApiError{400, "\"messages\" must be a non-empty list"};
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      throw ApiError{400, "each message needs a string \"role\" and a \"content\""};
    }
  }
  CompletionRequest r;
  try {
    r.prompt = tokenizer::apply_chat_template(ctx.chat, messages, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    throw ApiError{400, std::string("the chat template refused the conversation: ") + e.what()};
  }
  r.chat_rendered = true;
  // LMI clients put sampling under "parameters"; OpenAI clients at the top level.
  nlohmann::json sampling = body;
  if (body.contains("parameters")) {
    const auto& p = body["parameters"];
    if (!p.is_object()) throw ApiError{400, "\"parameters\" must be an object"};
    for (const auto& [k, v] : p.items()) sampling[k == "max_new_tokens" ? "max_tokens" : k] = v;
    // LMI samples only with do_sample; otherwise it decodes greedily.
    if (!bool_param(p, "do_sample", false)) sampling["temperature"] = 0;
  }
  read_sampling(sampling, r, ctx.default_max_new_tokens);
  const std::string id = new_id("chatcmpl-");
  const int64_t created = now_seconds();
  auto base = [&] {
    return nlohmann::json{
        {"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", ctx.model_name}};
  };
  respond(
      ctx, std::move(r), bool_param(body, "stream", false), response,
      [&](const std::string& text, const nlohmann::json& finish) {
        auto c = base();
        nlohmann::json delta = nlohmann::json::object();
        if (!text.empty()) delta["content"] = text;
        c["choices"] = {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}};
        return c;
      },
      [&](const CompletionResult& result) {
        auto c = base();
        c["object"] = "chat.completion";
        c["choices"] = {{{"index", 0},
                         {"message", {{"role", "assistant"}, {"content", result.text}}},
                         {"finish_reason", finish_reason(result)}}};
        c["usage"] = usage(result);
        return c;
      },
      [&] {
        auto c = base();
        c["choices"] = {
            {{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}};
        response.write_event(c.dump());
      });
}

void handle_chat_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response) {
  const auto body = parse_body(request);
  if (!body.contains("messages")) throw ApiError{400, "the request needs \"messages\""};
  answer_chat(ctx, body, response);
}

void handle_models(ServingContext& ctx, const HttpRequest&, HttpResponse& response) {
  response.send_json(
      200,
      {{"object", "list"},
       {"data", {{{"id", ctx.model_name}, {"object", "model"}, {"created", now_seconds()}, {"owned_by", "kiln"}}}}});
}

}  // namespace kiln::serving
