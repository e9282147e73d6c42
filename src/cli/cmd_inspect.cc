// kiln inspect: what an engine is, without loading its weights.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "engine/engine_reader.h"
#include "runtime/gemm_plan.h"

namespace kiln::cli {
namespace {

// What the engine records of its GEMM algorithms (CUDA engines only).
void print_gemm_choices(const engine::Manifest& m) {
  if (!m.kernel_choices.contains(runtime::kGemmChoicesKey)) return;
  std::string line;
  try {
    const runtime::GemmPlan plan = runtime::GemmPlan::from_kernel_choices(m.kernel_choices);
    line = plan.tuned ? concat(plan.tuned_choices(), " shapes measured on ", plan.device, " (", plan.arch,
                               ", cuBLASLt ", plan.cublaslt_version, ") in ", plan.seconds, " s: ", plan.mean_speedup(),
                               "x the heuristic's speed on average")
                      : concat("cuBLASLt's heuristic (not measured: ", plan.reason, ")");
  } catch (const Error& e) {
    line = e.what();
  }
  std::printf("gemms         %s\n", line.c_str());
}

void run_inspect(const std::string& dir, bool check) {
  const engine::Manifest m = engine::Engine::read_manifest(dir);
  const ModelSpec& s = m.spec;
  std::printf("engine        %s\n", dir.c_str());
  std::printf("kiln version  %s (format %d)\n", m.kiln_version.c_str(), m.format_version);
  std::printf("family        %s (%s)\n", s.family.c_str(), s.hf_architecture.c_str());
  std::printf(
      "dimensions    %lld layers, hidden %lld, heads %lld, kv heads %lld, head dim %lld, ffn %lld, vocab %lld\n",
      (long long)s.num_layers, (long long)s.hidden_size, (long long)s.num_heads, (long long)s.num_kv_heads,
      (long long)s.head_dim, (long long)s.intermediate_size, (long long)s.vocab_size);
  std::printf("positions     %s", std::string(position_kind_name(s.positions)).c_str());
  if (s.positions == PositionKind::rope) {
    std::printf(" (%s, %lld dims, theta %g, scaling %s)", std::string(rope_style_name(s.rope.style)).c_str(),
                (long long)s.rope.rotary_dim, s.rope.theta, std::string(rope_scaling_name(s.rope.scaling)).c_str());
  }
  if (s.sliding_window > 0) std::printf(", sliding window %lld", (long long)s.sliding_window);
  std::printf("\nblock         %s, %s norm, %s MLP%s\n", s.parallel_block ? "parallel" : "sequential",
              std::string(norm_kind_name(s.norm)).c_str(), std::string(activation_name(s.activation)).c_str(),
              s.tied_embeddings ? ", tied embeddings" : "");
  std::printf("dtype         %s\n", std::string(dtype_name(m.dtype)).c_str());
  if (m.quantization == engine::Quantization::fp8) {
    std::printf(
        "quantization  fp8: attention and MLP projections in E4M3 with per-output-channel fp32 scales; "
        "embeddings, LM head, norms and routers unquantized\n");
  } else {
    std::printf("quantization  none\n");
  }
  std::printf("target        %s\n", m.target.describe().c_str());
  std::printf("tensor par.   %d\n", m.tensor_parallel);
  std::printf("limits        batch %lld, input %lld, output %lld, tokens/step %lld\n",
              (long long)m.limits.max_batch_size, (long long)m.limits.max_input_len, (long long)m.limits.max_output_len,
              (long long)m.limits.max_num_tokens);
  // The CPU backend caches fp32; the CUDA one the engine's kv_cache_dtype.
  const DType kv = m.target.backend == "cpu" ? DType::f32 : m.kv_cache_dtype;
  std::printf("kv cache      %lld bytes per token (%s%s, all layers)\n",
              (long long)(2 * s.num_layers * s.num_kv_heads * s.head_dim * dtype_size(kv)),
              std::string(dtype_name(kv)).c_str(), kv == DType::f8e4m3 ? ": FP8, unscaled E4M3" : "");
  std::size_t tensors = 0;
  for (const auto& r : m.ranks) tensors += r.tensors.size();
  std::printf("size          %.2f MiB in %zu tensors over %zu rank blob(s)\n",
              static_cast<double>(m.total_bytes()) / (1 << 20), tensors, m.ranks.size());
  print_gemm_choices(m);
  std::printf("built         %s in %.2f s from %s\n", m.created.c_str(), m.build_seconds, m.source.c_str());
  if (check) {
    engine::Engine::open(dir, std::nullopt).verify_checksums();
    std::printf("checksums     ok\n");
  }
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto check = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("inspect", "Describe an engine: family, dimensions, dtype, target, limits, size");
  cmd->add_option("engine", *dir, "Engine directory")->required();
  cmd->add_flag("--check", *check, "Also verify the blobs' checksums");
  cmd->callback([dir, check] { run_inspect(*dir, *check); });
}

}  // namespace kiln::cli
