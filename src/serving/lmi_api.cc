#include "serving/lmi_api.h"

#include <future>

#include "serving/openai_api.h"
#include "serving/request_params.h"

namespace kiln::serving {
namespace {

struct LmiParameters {
  CompletionRequest request;
  bool details = false;
  bool return_full_text = false;
};

LmiParameters parse_parameters(ServingContext& ctx, const nlohmann::json& p) {
  refuse_unknown_keys(p,
                      {"max_new_tokens", "temperature", "top_k", "top_p", "do_sample", "repetition_penalty", "seed",
                       "stop", "stop_sequences", "details", "return_full_text", "decoder_input_details"},
                      "parameters");
  LmiParameters out;
  auto& job = out.request.job;
  job.max_new_tokens = int_param(p, "max_new_tokens", ctx.default_max_new_tokens);
  // LMI samples only with do_sample; temperature and friends shape the sampling.
  job.sampling.greedy = !bool_param(p, "do_sample", false);
  job.sampling.temperature = number_param(p, "temperature", 1.0);
  job.sampling.top_k = int_param(p, "top_k", 0);
  job.sampling.top_p = number_param(p, "top_p", 1.0);
  job.sampling.repetition_penalty = number_param(p, "repetition_penalty", 1.0);
  job.sampling.seed = static_cast<uint64_t>(int_param(p, "seed", 0));
  out.request.stop = stop_param(p, "stop");
  for (auto& s : stop_param(p, "stop_sequences")) out.request.stop.push_back(s);
  out.details = bool_param(p, "details", false);
  out.return_full_text = bool_param(p, "return_full_text", false);
  return out;
}

nlohmann::json token_json(const TokenDetail& t) {
  return {{"id", t.id}, {"text", t.text}, {"log_prob", t.logprob}, {"special", t.special}};
}

nlohmann::json answer_json(const LmiParameters& params, const std::string& input, const CompletionResult& r) {
  nlohmann::json out = {{"generated_text", params.return_full_text ? input + r.text : r.text}};
  if (params.details) {
    nlohmann::json tokens = nlohmann::json::array();
    for (const auto& t : r.tokens) tokens.push_back(token_json(t));
    out["details"] = {{"finish_reason", r.finish_reason},
                      {"generated_tokens", r.tokens.size()},
                      {"inputs", input},
                      {"tokens", tokens}};
  }
  return out;
}

}  // namespace

void handle_invocations(ServingContext& ctx, const HttpRequest& request, HttpResponse& response) {
  const nlohmann::json body = parse_request_body(request.body);
  if (!body.is_object()) throw ApiError{400, "the request body must be a JSON object"};
  if (body.contains("messages")) return answer_chat(ctx, body, response);
  refuse_unknown_keys(body, {"inputs", "parameters", "stream"}, "the request");
  if (!body.contains("inputs")) throw ApiError{400, "the request needs \"inputs\" (a string or a list of strings)"};
  const auto parameters = body.value("parameters", nlohmann::json::object());
  const bool stream = bool_param(body, "stream", false);
  const auto& inputs = body["inputs"];

  if (inputs.is_array()) {
    if (stream) throw ApiError{400, "\"stream\": true takes a single string in \"inputs\""};
    std::vector<std::future<nlohmann::json>> answers;
    for (const auto& input : inputs) {
      if (!input.is_string()) throw ApiError{400, "\"inputs\" must hold strings"};
      LmiParameters p = parse_parameters(ctx, parameters);
      p.request.prompt = input.get<std::string>();
      // Each input is its own sequence in the running batch.
      answers.push_back(std::async(std::launch::async, [&ctx, p]() mutable {
        const std::string text = p.request.prompt;
        return answer_json(p, text,
                           run_completion(
                               ctx, p.request, [](auto, auto&) { return true; }, nullptr));
      }));
    }
    nlohmann::json out = nlohmann::json::array();
    for (auto& a : answers) out.push_back(a.get());
    response.send_json(200, out);
    return;
  }
  if (!inputs.is_string()) throw ApiError{400, "\"inputs\" must be a string or a list of strings"};
  LmiParameters p = parse_parameters(ctx, parameters);
  const std::string input = inputs.get<std::string>();
  p.request.prompt = input;
  if (!stream) {
    const auto r = run_completion(
        ctx, p.request, [](auto, auto&) { return true; }, [&] { return response.client_gone(); });
    if (!r.client_gone) response.send_json(200, answer_json(p, input, r));
    return;
  }
  response.start_stream(200, "application/jsonlines");
  const auto r = run_completion(
      ctx, p.request,
      [&](std::string_view, const std::vector<TokenDetail>& tokens) {
        for (const auto& t : tokens) {
          if (!response.write_json_line({{"token", token_json(t)}})) return false;
        }
        return true;
      },
      [&] { return response.client_gone(); });
  if (r.client_gone) return;
  response.write_json_line(answer_json(p, input, r));
  response.end_stream();
}

}  // namespace kiln::serving
