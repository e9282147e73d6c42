// kiln: compile HuggingFace checkpoints into engines and run them.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

namespace kiln::cli {
int& exit_status() {
  static int status = 0;
  return status;
}
}  // namespace kiln::cli

int main(int argc, char** argv) {
  CLI::App app{
      "kiln compiles HuggingFace LLM checkpoints ahead of time into engines for one target and runs them.\n"
      "  kiln build    --model DIR --output DIR     checkpoint -> engine\n"
      "  kiln generate --engine DIR --prompt TEXT   run the engine (or --chat FILE, --input-ids IDS)\n"
      "  kiln verify   --engine DIR --reference DIR compare with HuggingFace reference outputs\n"
      "  kiln inspect  DIR                          describe an engine\n"
      "  kiln tokenize | detokenize | chat          the model's tokenizer and chat template\n"
      "  kiln serve    [--properties-dir DIR]       LMI / OpenAI HTTP server with continuous batching\n"
      "  kiln s3 cp   SRC DST [--recursive]        copy files and trees to and from S3\n"
      "  kiln bench    DIR                          measure load time, decode speed, throughput, TTFT",
      "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + kiln::kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-q) may follow the subcommand
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Only print results and errors");
  app.parse_complete_callback([&] {
    if (quiet) kiln::set_log_level(kiln::LogLevel::warn);
  });
  kiln::cli::add_build_command(app);
  kiln::cli::add_generate_command(app);
  kiln::cli::add_verify_command(app);
  kiln::cli::add_perplexity_command(app);
  kiln::cli::add_inspect_command(app);
  kiln::cli::add_tokenizer_commands(app);
  kiln::cli::add_serve_command(app);
  kiln::cli::add_s3_command(app);
  kiln::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const kiln::Error& e) {
    kiln::log_line(kiln::LogLevel::error, e.what());
    return 1;
  } catch (const std::exception& e) {
    kiln::log_line(kiln::LogLevel::error, std::string("unexpected failure: ") + e.what());
    return 2;
  }
  return kiln::cli::exit_status();
}
