// kiln serve: the LMI / OpenAI-compatible server, configured as LMI is
// (serving.properties in --properties-dir, OPTION_* environment variables),
// with command-line flags for the common cases on top.
#include <unistd.h>

#include <filesystem>

#include "cli/commands.h"
#include "core/log.h"
#include "serving/model_server.h"
#include "serving/serving_options.h"

namespace kiln::cli {
namespace {

struct ServeArgs {
  std::string properties_dir = ".";
  std::string model_id, host;
  int port = -1;
  bool no_verify_weights = false;
};

// The demo model: beside the binary's source tree, or next to an installed binary.
std::filesystem::path default_model() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const auto& candidate : {exe.parent_path() / ".." / "demo" / "model", std::filesystem::path(KILN_DEMO_MODEL)}) {
    if (std::filesystem::exists(candidate / "config.json")) return candidate;
  }
  return KILN_DEMO_MODEL;
}

void run_serve(const ServeArgs& a) {
  auto environment = serving::process_environment();
  // Flags win over the environment, which wins over serving.properties.
  if (!a.model_id.empty()) environment.emplace_back("OPTION_MODEL_ID", a.model_id);
  if (a.port >= 0) environment.emplace_back("OPTION_PORT", std::to_string(a.port));
  if (!a.host.empty()) environment.emplace_back("OPTION_HOST", a.host);
  if (a.no_verify_weights) environment.emplace_back("OPTION_VERIFY_WEIGHTS", "false");
  const auto options = serving::load_serving_options(a.properties_dir, environment);
  for (const auto& note : options.notes) log_info("note: ", note);
  for (const auto& warning : options.warnings) log_warn(warning);
  exit_status() = serving::run_model_server(options, default_model());
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model over HTTP (LMI /invocations, OpenAI /v1/completions and /v1/chat/completions) with continuous "
      "batching. Options come from serving.properties (option.*) and OPTION_* variables, as in LMI; with no "
      "model_id the bundled demo model is served.");
  cmd->add_option("--properties-dir,--properties_dir", a->properties_dir,
                  "Directory holding serving.properties (default: the current directory)");
  cmd->add_option("--model-id", a->model_id, "Engine or checkpoint directory (option.model_id)");
  cmd->add_option("--port", a->port, "Port (option.port; default 8080; 0 picks a free one)");
  cmd->add_option("--host", a->host, "Address to listen on (option.host; default 0.0.0.0)");
  cmd->add_flag("--no-verify-weights", a->no_verify_weights,
                "Load the engine without checking its blobs' checksums (option.verify_weights=false)");
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace kiln::cli
