// kiln build: checkpoint -> engine.
#include <cstdio>

#include "cli/commands.h"
#include "compiler/compiler.h"
#include "core/error.h"
#include "core/log.h"

namespace kiln::cli {
namespace {

struct BuildArgs {
  std::string model, output, dtype, target = "auto";
  int tp = 1;
  int64_t max_batch_size = 0, max_input_len = 0, max_output_len = 0, max_num_tokens = 0;
  bool force = false;
  std::vector<std::string> overrides;
};

engine::Target resolve_target(const std::string& name) {
  if (name == "cpu" || name == "auto") return engine::host_cpu_target();
  if (name == "cuda") {
    throw_error("--target cuda: this kiln build runs CPU engines only; the CUDA target is not available yet ",
                "(use --target cpu)");
  }
  throw_error("--target '", name, "' is not a target; use cpu, cuda or auto");
}

std::optional<int64_t> given(int64_t v) { return v ? std::optional<int64_t>(v) : std::nullopt; }

void run_build(const BuildArgs& a) {
  compiler::BuildOptions o;
  o.model = a.model;
  o.output = a.output;
  if (!a.dtype.empty()) o.dtype = compiler::parse_build_dtype(a.dtype);
  o.target = resolve_target(a.target);
  o.tensor_parallel = a.tp;
  o.max_batch_size = given(a.max_batch_size);
  o.max_input_len = given(a.max_input_len);
  o.max_output_len = given(a.max_output_len);
  o.max_num_tokens = given(a.max_num_tokens);
  o.force = a.force;
  o.hf_overrides = a.overrides;
  const compiler::BuildReport r = compiler::build_engine(o);
  log_info("built ", r.family, " engine ", a.output, ": ", r.tensors, " tensors, ",
           static_cast<double>(r.engine_bytes) / (1 << 20), " MiB in ", r.seconds, " s");
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* cmd = app.add_subcommand("build", "Compile a HuggingFace checkpoint directory into an engine");
  cmd->add_option("--model", args->model, "HuggingFace checkpoint directory (config.json + weights)")->required();
  cmd->add_option("--output", args->output, "Engine directory to create")->required();
  cmd->add_option("--dtype", args->dtype, "Weight dtype: fp32, fp16 or bf16 (default: the checkpoint's)");
  cmd->add_option("--target", args->target, "cpu, cuda or auto (default: auto)");
  cmd->add_option("--tp", args->tp, "Tensor-parallel degree (ranks)")->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-size", args->max_batch_size, "Most sequences per step (default 8)");
  cmd->add_option("--max-input-len", args->max_input_len, "Longest prompt (default: the model's context)");
  cmd->add_option("--max-output-len", args->max_output_len, "Most new tokens (default: the model's context)");
  cmd->add_option("--max-num-tokens", args->max_num_tokens, "Most tokens per engine step (default 4096)");
  cmd->add_flag("--force", args->force, "Replace an existing output directory");
  cmd->add_option("--hf-override", args->overrides,
                  "key=value patch of config.json, e.g. baichuan_version=2 (repeatable)");
  cmd->callback([args] { run_build(*args); });
}

}  // namespace kiln::cli
