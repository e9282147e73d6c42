// DJL Serving LMI's API: POST /invocations (and /predictions/<model>).
//   {"inputs": "text" | ["text", ...], "parameters": {...}, "stream": bool}
//   -> {"generated_text": ...} (+ "details"), a list for a list of inputs, or
//   JSON lines when streaming (one token per line, the last with generated_text).
// A body with "messages" is a chat request, answered in OpenAI's chat schema.
#pragma once

#include "serving/completion.h"
#include "serving/http_request.h"
#include "serving/http_response.h"

namespace kiln::serving {

void handle_invocations(ServingContext& ctx, const HttpRequest& request, HttpResponse& response);

}  // namespace kiln::serving
