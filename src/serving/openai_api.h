// OpenAI's API: POST /v1/completions, POST /v1/chat/completions (streaming as
// server-sent events ending in "data: [DONE]"), GET /v1/models.
#pragma once

#include <nlohmann/json.hpp>

#include "serving/completion.h"
#include "serving/http_request.h"
#include "serving/http_response.h"

namespace kiln::serving {

void handle_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response);
void handle_chat_completions(ServingContext& ctx, const HttpRequest& request, HttpResponse& response);
// The chat route's work on an already-parsed body (LMI's /invocations with "messages" lands here too).
void answer_chat(ServingContext& ctx, const nlohmann::json& body, HttpResponse& response);
void handle_models(ServingContext& ctx, const HttpRequest& request, HttpResponse& response);

}  // namespace kiln::serving
