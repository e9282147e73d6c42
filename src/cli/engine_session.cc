#include "cli/engine_session.h"

#include <charconv>
#include <chrono>
#include <climits>

#include "core/error.h"
#include "runtime/backend_factory.h"

namespace kiln::cli {

std::unique_ptr<EngineSession> EngineSession::open(const std::filesystem::path& dir, bool verify_weights) {
  const auto start = std::chrono::steady_clock::now();
  const engine::Manifest manifest = engine::Engine::read_manifest(dir);
  auto engine = engine::Engine::open(dir, runtime::runtime_target_for(manifest.target));
  engine.set_verify_weights(verify_weights);
  auto backend = runtime::make_backend(engine.manifest());
  auto s = std::make_unique<EngineSession>(EngineSession{std::move(engine), std::move(backend), nullptr});
  s->generator = std::make_unique<runtime::Generator>(s->engine, *s->backend);
  s->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

std::optional<std::vector<int64_t>> parse_int_list(const std::string& text, std::string* bad_item) {
  std::vector<int64_t> values;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    std::size_t b = pos, e = comma;
    while (b < e && text[b] == ' ') ++b;
    while (e > b && text[e - 1] == ' ') --e;
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + b, text.data() + e, v);
    if (b == e || ec != std::errc() || ptr != text.data() + e) {
      if (bad_item) *bad_item = text.substr(pos, comma - pos);
      return std::nullopt;
    }
    values.push_back(v);
    pos = comma + 1;
  }
  return values;
}

std::vector<int32_t> parse_id_list(const std::string& text, const char* option) {
  std::string bad;
  const auto values = parse_int_list(text, &bad);
  std::vector<int32_t> ids;
  for (std::size_t i = 0; values && i < values->size(); ++i) {
    const int64_t v = (*values)[i];
    if (v < INT32_MIN || v > INT32_MAX) {
      bad = std::to_string(v);
      break;
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (!values || ids.size() != values->size()) {
    throw_error(option, ": '", bad, "' is not a token id (expected e.g. 1,2,3)");
  }
  return ids;
}

}  // namespace kiln::cli
