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

// Sampling as OpenAI defines it: temperature 1 by default, 0 meaning greedy.
void read_sampling(ServingContext& ctx, const nlohmann::json& body, CompletionRequest& r, int64_t default_max_tokens) {
  int_param(body, "n", 1, 1, 1);  // one choice per request
  for (const char* penalty : {"presence_penalty", "frequency_penalty"}) {
    const double value = number_param(body, penalty, 0);
    require_param(value == 0, penalty, "0 (not supported: use repetition_penalty)", value);
  }
  const int64_t max_tokens = max_new_tokens_param(ctx, body, "max_tokens", default_max_tokens);
  r.job.max_new_tokens = max_new_tokens_param(ctx, body, "max_completion_tokens", max_tokens);
  r.job.sampling = sampling_params(body, 1.0);
  r.job.sampling.greedy = r.job.sampling.temperature == 0;
  if (r.job.sampling.greedy) r.job.sampling.temperature = 1.0;
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

// Characters (code points) in UTF-8 text, for text_offset.
int64_t characters(std::string_view text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// Completions' `logprobs` for `tokens`, their offsets counted on from `offset`
// (characters into the completion's text, as vLLM counts them).
nlohmann::json completion_logprobs(const std::vector<TokenDetail>& tokens, int64_t& offset) {
  nlohmann::json texts = nlohmann::json::array(), logprobs = nlohmann::json::array(), offsets = nlohmann::json::array();
  for (const auto& t : tokens) {
    texts.push_back(t.text);
    logprobs.push_back(t.logprob);
    offsets.push_back(offset);
    offset += characters(t.text);
  }
  return {{"tokens", texts}, {"token_logprobs", logprobs}, {"top_logprobs", nullptr}, {"text_offset", offsets}};
}

// Chat's `logprobs`: one entry per token, with its UTF-8 bytes.
nlohmann::json chat_logprobs(const std::vector<TokenDetail>& tokens) {
  nlohmann::json content = nlohmann::json::array();
  for (const auto& t : tokens) {
    std::vector<int> bytes(t.text.begin(), t.text.end());
    for (int& b : bytes) b &= 0xFF;
    content.push_back(
        {{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes}, {"top_logprobs", nlohmann::json::array()}});
  }
  return {{"content", content}};
}

// The API's objects for one request: `chunk(text, tokens, finish)` for a
// streamed piece, `whole(result)` for the answer sent at once.
struct Shapes {
  std::function<nlohmann::json(const std::string&, const std::vector<TokenDetail>&, const nlohmann::json&)> chunk;
  std::function<nlohmann::json(const CompletionResult&)> whole;
  std::function<void()> before_first;  // streamed first (chat: the assistant role)
  bool token_chunks = false;           // a chunk for tokens that bring no text yet (their logprobs)
};

// An error event as OpenAI's streams carry them.
nlohmann::json error_event(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.status >= 500 ? "server_error" : "invalid_request_error"},
            {"param", nullptr},
            {"code", e.status}}}};
}

// Runs `r` and answers as one JSON object or as server-sent events.
void respond(ServingContext& ctx, CompletionRequest r, bool stream, HttpResponse& response, const Shapes& shapes) {
  if (!stream) {
    const auto result = complete(ctx, std::move(r), response);
    if (!result.client_gone) response.send_json(200, shapes.whole(result));
    return;
  }
  StreamFormat format;
  format.content_type = "text/event-stream";
  format.headers = {{"Cache-Control", "no-cache"}};
  format.on_start = shapes.before_first;
  format.sink = [&](std::string_view delta, const std::vector<TokenDetail>& tokens) {
    if (delta.empty() && (!shapes.token_chunks || tokens.empty())) return true;
    return response.write_event(shapes.chunk(std::string(delta), tokens, nullptr).dump());
  };
  // A failure mid-stream: an error event, then [DONE], so that clients stop reading.
  format.write_error = [&](const ApiError& e, const StreamedSoFar&) {
    response.write_event(error_event(e).dump());
    response.write_event("[DONE]");
  };
  const auto result = stream_completion(ctx, std::move(r), response, format);
  if (result.client_gone) return;
  nlohmann::json last = shapes.chunk("", {}, finish_reason(result));
  last["usage"] = usage(result);
  response.write_event(last.dump());
  response.write_event("[DONE]");
  response.end_stream();
}

}  // namespace

void handle_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response) {
  const auto body = parse_request_body(request.body);
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
  // logprobs N: each token's logprob, and the N most likely alternatives, which kiln does not compute.
  const int64_t logprobs = int_param(body, "logprobs", -1, 0, 5);
  if (logprobs > 0) {
    throw ApiError{400, "'logprobs' " + std::to_string(logprobs) +
                            ": the most likely alternatives (top_logprobs) are not available; logprobs 0 gives each "
                            "generated token's logprob"};
  }
  read_sampling(ctx, body, r, 16);  // OpenAI's default max_tokens for completions
  const std::string id = new_id("cmpl-");
  const int64_t created = now_seconds();
  auto base = [&] {
    return nlohmann::json{{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", ctx.model_name}};
  };
  int64_t offset = 0;  // text_offset of the next streamed token
  Shapes shapes;
  shapes.token_chunks = logprobs == 0;
  shapes.chunk = [&](const std::string& text, const std::vector<TokenDetail>& tokens, const nlohmann::json& finish) {
    auto c = base();
    c["choices"] = {{{"index", 0},
                     {"text", text},
                     {"logprobs", logprobs == 0 && !tokens.empty() ? completion_logprobs(tokens, offset) : nullptr},
                     {"finish_reason", finish}}};
    return c;
  };
  shapes.whole = [&](const CompletionResult& result) {
    auto c = base();
    int64_t start = 0;
    c["choices"] = {{{"index", 0},
                     {"text", result.text},
                     {"logprobs", logprobs == 0 ? completion_logprobs(result.tokens, start) : nullptr},
                     {"finish_reason", finish_reason(result)}}};
    c["usage"] = usage(result);
    return c;
  };
  respond(ctx, std::move(r), bool_param(body, "stream", false), response, shapes);
}

void answer_chat(ServingContext& ctx, const nlohmann::json& body, HttpResponse& response) {
  refuse_unknown_keys(body,
                      {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n",
                       "stop", "stream", "stream_options", "seed", "user", "presence_penalty", "frequency_penalty",
                       "repetition_penalty", "logprobs", "top_logprobs", "parameters"},
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
  read_sampling(ctx, sampling, r, ctx.default_max_new_tokens);
  // logprobs: true gives each token's logprob; alternatives (top_logprobs) are not computed.
  const bool logprobs = bool_param(sampling, "logprobs", false);
  const int64_t top_logprobs = int_param(sampling, "top_logprobs", 0, 0, 20);
  if (top_logprobs > 0) {
    throw ApiError{400, "'top_logprobs' " + std::to_string(top_logprobs) +
                            ": the most likely alternatives are not available; \"logprobs\": true gives each "
                            "generated token's logprob"};
  }
  const std::string id = new_id("chatcmpl-");
  const int64_t created = now_seconds();
  auto base = [&] {
    return nlohmann::json{
        {"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", ctx.model_name}};
  };
  Shapes shapes;
  shapes.token_chunks = logprobs;
  shapes.chunk = [&](const std::string& text, const std::vector<TokenDetail>& tokens, const nlohmann::json& finish) {
    auto c = base();
    nlohmann::json delta = nlohmann::json::object();
    if (!text.empty()) delta["content"] = text;
    c["choices"] = {{{"index", 0},
                     {"delta", delta},
                     {"logprobs", logprobs && !tokens.empty() ? chat_logprobs(tokens) : nullptr},
                     {"finish_reason", finish}}};
    return c;
  };
  shapes.whole = [&](const CompletionResult& result) {
    auto c = base();
    c["object"] = "chat.completion";
    c["choices"] = {{{"index", 0},
                     {"message", {{"role", "assistant"}, {"content", result.text}}},
                     {"logprobs", logprobs ? chat_logprobs(result.tokens) : nullptr},
                     {"finish_reason", finish_reason(result)}}};
    c["usage"] = usage(result);
    return c;
  };
  shapes.before_first = [&] {
    auto c = base();
    c["choices"] = {{{"index", 0},
                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                     {"logprobs", nullptr},
                     {"finish_reason", nullptr}}};
    response.write_event(c.dump());
  };
  respond(ctx, std::move(r), bool_param(body, "stream", false), response, shapes);
}

void handle_chat_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response) {
  const auto body = parse_request_body(request.body);
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
