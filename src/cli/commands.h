// Each `kiln` subcommand registers itself on the CLI11 app from its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::cli {

// The process exit status a subcommand asks for (verify sets 1 on FAIL).
int& exit_status();

void add_build_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_tokenizer_commands(CLI::App& app);  // tokenize, detokenize, chat
void add_serve_command(CLI::App& app);
void add_s3_command(CLI::App& app);  // s3 cp
void add_bench_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);

}  // namespace kiln::cli
