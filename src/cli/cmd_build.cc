// kiln build: checkpoint -> engine.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "compiler/compiler.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/stale_staging.h"
#include "runtime/backend_factory.h"
#include "serving/serving_options.h"
#include "storage/model_store.h"

namespace kiln::cli {
namespace {

struct BuildArgs {
  std::string model, output, dtype, target = "auto", properties_dir, tune = "on", quantize, kv_cache_dtype;
  std::optional<int> tp;  // unset: serving.properties, else 1
  int64_t max_batch_size = 0, max_input_len = 0, max_output_len = 0, max_num_tokens = 0;
  bool force = false;
  std::vector<std::string> overrides;
};

std::optional<int64_t> given(int64_t v) { return v ? std::optional<int64_t>(v) : std::nullopt; }

// LMI's partition step: the same serving.properties (and OPTION_* variables)
// that `kiln serve` reads say what to build; flags given beside them win.
void apply_properties(BuildArgs& a) {
  const auto options = serving::load_serving_options(a.properties_dir, serving::process_environment());
  for (const auto& note : options.notes) log_info("note: ", note);
  for (const auto& warning : options.warnings) log_warn(warning);
  if (a.model.empty()) a.model = options.model_id;
  if (a.model.empty()) throw_error("--properties-dir ", a.properties_dir, ": option.model_id is not set");
  if (!a.tp) a.tp = options.tensor_parallel_for(0);
  if (a.dtype.empty() && options.dtype) a.dtype = std::string(dtype_name(*options.dtype));
  if (a.quantize.empty()) a.quantize = std::string(engine::quantization_name(options.quantization));
  if (a.kv_cache_dtype.empty()) a.kv_cache_dtype = options.kv_cache_dtype;
  if (!a.max_batch_size) a.max_batch_size = options.max_rolling_batch_size;
  if (!a.max_input_len && options.max_input_len) a.max_input_len = *options.max_input_len;
  if (!a.max_output_len && options.max_output_len) a.max_output_len = *options.max_output_len;
  if (!a.max_num_tokens && options.max_num_tokens) a.max_num_tokens = *options.max_num_tokens;
  if (a.target == "auto") a.target = options.target;
}

void run_build(BuildArgs a) {
  if (!a.properties_dir.empty()) apply_properties(a);
  if (a.model.empty()) throw_error("give --model DIR (or --properties-dir with option.model_id)");
  if (a.output.empty()) throw_error("give --output DIR (or --model-repo DIR)");
  // s3:// on either side: the checkpoint comes through the download cache; the
  // engine is built locally, then published with engine.json last.
  std::unique_ptr<storage::S3Client> s3;
  const bool to_s3 = a.output.starts_with("s3://");
  // (S3Client is not movable: the prvalue initializes the new object in place.)
  if (a.model.starts_with("s3://") || to_s3) s3.reset(new storage::S3Client(storage::S3Client::from_environment()));
  const auto cache_root = serving::load_serving_options("", serving::process_environment()).cache_dir;
  const std::filesystem::path model =
      a.model.starts_with("s3://") ? storage::fetch_prefix_cached(*s3, storage::S3Uri::parse(a.model), cache_root)
                                   : std::filesystem::path(a.model);
  std::optional<std::filesystem::path> staging;
  if (to_s3) {
    // Named by the process, so that the next build can tell a killed build's
    // staging (its process gone) from a running one's, and remove it.
    const auto tmp = std::filesystem::temp_directory_path();
    for (const auto& stale : engine::remove_dead_process_dirs(tmp, "kiln-build-")) {
      log_info("removed ", stale.string(), ", left by a build that was killed");
    }
    staging = tmp / concat("kiln-build-", ::getpid());
    std::error_code ec;
    std::filesystem::remove_all(*staging, ec);
    if (!std::filesystem::create_directory(*staging, ec)) {
      throw_error("cannot create the staging directory ", staging->string(), ": ", ec.message());
    }
  }
  struct Cleanup {
    std::optional<std::filesystem::path>& dir;
    ~Cleanup() {
      std::error_code ec;
      if (dir) std::filesystem::remove_all(*dir, ec);
    }
  } cleanup{staging};
  compiler::BuildOptions o;
  o.model = model;
  o.output = staging ? *staging / "engine" : std::filesystem::path(a.output);
  if (!a.dtype.empty()) o.dtype = compiler::parse_build_dtype(a.dtype);
  if (!engine::parse_quantization(a.quantize, &o.quantization)) {
    throw_error("--quantize ", a.quantize, ": kiln builds fp8 (E4M3 weights with per-channel scales) or none");
  }
  o.kv_cache_dtype = compiler::parse_kv_cache_dtype(a.kv_cache_dtype);
  o.target = runtime::resolve_target(a.target);
  o.tensor_parallel = a.tp.value_or(1);
  o.max_batch_size = given(a.max_batch_size);
  o.max_input_len = given(a.max_input_len);
  o.max_output_len = given(a.max_output_len);
  o.max_num_tokens = given(a.max_num_tokens);
  o.force = a.force;
  o.hf_overrides = a.overrides;
  o.kernel_tuner = [tune = a.tune == "on"](const engine::Manifest& m, std::stop_token stop) {
    return runtime::tune_kernel_choices(m, tune, stop);
  };
  const compiler::BuildReport r = compiler::build_engine(o);
  log_info("built ", r.family, " engine ", a.output, ": ", r.tensors, " tensors, ",
           static_cast<double>(r.engine_bytes) / (1 << 20), " MiB in ", r.seconds, " s");
  if (to_s3) {
    const auto sent = storage::publish_engine(*s3, o.output, storage::S3Uri::parse(a.output), a.force);
    log_info("uploaded ", sent.files, " files (", static_cast<double>(sent.bytes) / (1 << 20), " MiB) to ", a.output,
             " in ", sent.seconds, " s");
  }
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* cmd = app.add_subcommand("build", "Compile a HuggingFace checkpoint directory into an engine");
  cmd->add_option("--model", args->model, "HuggingFace checkpoint directory (config.json + weights)");
  cmd->add_option("--output,--model-repo,--model_repo,--trt_llm_model_repo", args->output,
                  "Engine directory to create (LMI's partition script spells it --trt_llm_model_repo)");
  cmd->add_option("--properties-dir,--properties_dir", args->properties_dir,
                  "Directory with serving.properties: model_id, tensor_parallel_degree, dtype and limits from it "
                  "(and OPTION_* variables), as `kiln serve` reads them");
  cmd->add_option("--dtype", args->dtype, "Weight dtype: fp32, fp16 or bf16 (default: the checkpoint's)");
  cmd->add_option("--quantize", args->quantize,
                  "fp8: attention and MLP projections in FP8 E4M3 with per-output-channel scales, the rest in "
                  "--dtype (default bf16); GPUs with FP8 tensor cores (sm_89+) only. none (default): unquantized");
  cmd->add_option("--kv-cache-dtype,--kv_cache_dtype", args->kv_cache_dtype,
                  "fp8: the KV cache in FP8 E4M3 (half the bytes of 16 bits: twice the tokens in the same memory; "
                  "GPUs from sm_89 only). auto (default): the engine's dtype")
      ->check(CLI::IsMember({"auto", "fp8", "fp8_e4m3", "float8_e4m3fn"}));
  cmd->add_option(
      "--target", args->target,
      "cpu, cuda (this machine's GPU architecture), cuda:sm_XY (that architecture, e.g. cuda:sm_90, to build where "
      "that GPU is absent) or auto: the GPU when one is present, else the CPU (default: auto)");
  cmd->add_option("--tp,--tensor_parallel_degree,--tensor-parallel-degree", args->tp, "Tensor-parallel degree (ranks)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-size", args->max_batch_size, "Most sequences per step (default 8)");
  cmd->add_option("--max-input-len", args->max_input_len, "Longest prompt (default: the model's context)");
  cmd->add_option("--max-output-len", args->max_output_len, "Most new tokens (default: the model's context)");
  cmd->add_option("--max-num-tokens", args->max_num_tokens, "Most tokens per engine step (default 4096)");
  cmd->add_option("--tune", args->tune,
                  "on (default): for a cuda target whose GPU this machine has, time cuBLASLt's candidate algorithms "
                  "for every GEMM shape the engine runs and store the fastest in it (seconds to a minute); off: "
                  "store none, cuBLASLt's heuristic chooses at run time (as for cuda:sm_XY built without that GPU)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_flag("--force", args->force, "Replace an existing output directory");
  cmd->add_option("--hf-override", args->overrides,
                  "key=value patch of config.json, e.g. baichuan_version=2 (repeatable)");
  cmd->callback([args] { run_build(*args); });
}

}  // namespace kiln::cli
