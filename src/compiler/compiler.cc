#include "compiler/compiler.h"

#include <chrono>
#include <ctime>
#include <map>
#include <set>

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "compiler/tensor_parallel.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "engine/engine_writer.h"
#include "models/registry.h"

namespace kiln::compiler {
namespace fs = std::filesystem;

namespace {

// Tokenizer and generation files travel inside the engine (tokenizer/).
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json", "tokenizer_config.json",  "tokenizer.model",   "special_tokens_map.json", "vocab.json",
    "merges.txt",     "generation_config.json", "added_tokens.json", "tokenization_*.py",       "qwen.tiktoken",
};

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// The float dtype most of the checkpoint's tensors are stored in, by HF's name.
std::string stored_dtype_name(const checkpoint::WeightSet& weights) {
  std::map<DType, int> counts;
  for (const auto& name : weights.names()) {
    const DType t = weights.get(name).dtype;
    if (is_float(t)) ++counts[t];
  }
  DType best = DType::f32;
  int most = 0;
  for (auto [t, n] : counts) {
    if (n > most) best = t, most = n;
  }
  switch (best) {
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::f64: return "float64";
    default: return "float32";
  }
}

engine::Limits resolve_limits(const BuildOptions& o, const ModelSpec& spec) {
  engine::Limits l;
  const int64_t context = spec.max_positions > 0 ? spec.max_positions : 4096;
  l.max_batch_size = o.max_batch_size.value_or(8);
  l.max_input_len = o.max_input_len.value_or(context);
  l.max_output_len = o.max_output_len.value_or(context);
  l.max_num_tokens = o.max_num_tokens.value_or(std::max<int64_t>(4096, l.max_input_len));
  auto positive = [](int64_t v, const char* name) {
    if (v < 1) throw_error("--", name, " must be at least 1, got ", v);
  };
  positive(l.max_batch_size, "max-batch-size");
  positive(l.max_input_len, "max-input-len");
  positive(l.max_output_len, "max-output-len");
  positive(l.max_num_tokens, "max-num-tokens");
  if (spec.max_positions > 0 && l.max_input_len > spec.max_positions) {
    throw_error("--max-input-len ", l.max_input_len, " exceeds the model's context length ", spec.max_positions);
  }
  return l;
}

// Copies the tokenizer files a checkpoint has into the engine's tokenizer/.
void copy_tokenizer_files(const fs::path& model, engine::EngineWriter& writer) {
  for (const auto& entry : fs::directory_iterator(model)) {
    const std::string name = entry.path().filename().string();
    for (std::string_view pattern : kTokenizerFiles) {
      const auto star = pattern.find('*');
      const bool match = star == std::string_view::npos
                             ? name == pattern
                             : name.starts_with(pattern.substr(0, star)) && name.ends_with(pattern.substr(star + 1));
      if (match && entry.is_regular_file()) writer.add_file(entry.path(), fs::path("tokenizer") / name);
    }
  }
}

}  // namespace

BuildReport build_engine(const BuildOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  // Refuse an existing output before any work.
  if (fs::exists(o.output) && !o.force) {
    throw_error("output ", o.output.string(), " already exists; pass --force to replace it");
  }
  checkpoint::HfConfig config = checkpoint::HfConfig::load(o.model);
  for (const auto& override_text : o.hf_overrides) config.apply_override(override_text);
  const checkpoint::WeightSet weights = checkpoint::WeightSet::open(o.model);
  if (!config.torch_dtype()) {
    // As transformers' torch_dtype="auto": without a config dtype, the weights' own dtype is the model's.
    config.apply_override(concat("torch_dtype=\"", stored_dtype_name(weights), "\""));
  }
  const models::Adapter& adapter = models::Registry::builtin().find(config);
  const ModelSpec spec = adapter.spec(config);
  check_splittable(spec, o.tensor_parallel);
  const engine::Limits limits = resolve_limits(o, spec);

  DType dtype = DType::f32;
  if (o.dtype) {
    dtype = *o.dtype;
  } else if (auto name = config.torch_dtype()) {
    if (!parse_dtype(*name, &dtype) || !(dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16)) {
      dtype = DType::f32;
    }
  }

  const std::vector<models::CanonicalTensor> tensors = adapter.tensors(spec, weights);

  // Every source must exist before anything is written, so the error comes first.
  std::set<std::string> used;
  for (const auto& t : tensors) {
    for (const auto& src : t.sources) {
      if (!weights.contains(src)) {
        throw_error("checkpoint ", o.model.string(), " has no tensor '", src, "' (needed for ", t.name, " of ",
                    spec.hf_architecture, ")");
      }
      used.insert(src);
    }
  }
  BuildReport report;
  report.family = spec.family;
  for (const auto& name : weights.names()) {
    if (!used.count(name) && !adapter.ignorable(name)) report.unused_checkpoint_tensors.push_back(name);
  }
  if (!report.unused_checkpoint_tensors.empty()) {
    log_warn(report.unused_checkpoint_tensors.size(), " checkpoint tensor(s) not used by the ", spec.family,
             " adapter, e.g. '", report.unused_checkpoint_tensors.front(), "'");
  }

  log_info("building ", spec.family, " (", spec.hf_architecture, ") for ", o.target.describe(), ": ", spec.num_layers,
           " layers, hidden ", spec.hidden_size, ", ", dtype_name(dtype), ", tp ", o.tensor_parallel);
  engine::EngineWriter writer(o.output, o.tensor_parallel, o.force);
  std::vector<uint16_t> half;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const FloatTensor full = t.produce();
    // Matrices take the build dtype. Norms, biases and MoE routers stay fp32: they
    // are tiny, and rounding them moves results (a router's choice is discrete).
    const bool keep_fp32 = full.shape.size() != 2 || t.name.ends_with(tensor_names::kRouterWeight);
    const DType stored = keep_fp32 ? DType::f32 : dtype;
    for (int rank = 0; rank < o.tensor_parallel; ++rank) {
      const FloatTensor part = split_for_rank(full, t.layout, spec, rank, o.tensor_parallel);
      const std::size_t n = part.values.size();
      if (stored == DType::f32) {
        writer.add_tensor(rank, t.name, stored, part.shape, std::string(models::layout_name(t.layout)), part.data(),
                          n * sizeof(float));
      } else {
        half.resize(n);
        convert_from_f32(part.data(), stored, half.data(), n);
        writer.add_tensor(rank, t.name, stored, part.shape, std::string(models::layout_name(t.layout)), half.data(),
                          n * sizeof(uint16_t));
      }
    }
    if ((i + 1) % 16 == 0 || i + 1 == tensors.size()) {
      log_info("  [", i + 1, "/", tensors.size(), "] ", t.name);
    }
  }
  copy_tokenizer_files(o.model, writer);

  engine::Manifest m;
  m.kiln_version = kVersion;
  m.spec = spec;
  m.target = o.target;
  m.dtype = dtype;
  m.source_dtype = DType::f32;
  if (auto name = config.torch_dtype()) parse_dtype(*name, &m.source_dtype);
  m.tensor_parallel = o.tensor_parallel;
  m.limits = limits;
  m.source = fs::absolute(o.model).lexically_normal().string();
  m.created = utc_now();
  m.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writer.commit(m);

  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.tensors = static_cast<int>(tensors.size());
  for (const auto& entry : fs::directory_iterator(o.output)) {
    if (entry.is_regular_file()) report.engine_bytes += entry.file_size();
  }
  return report;
}

}  // namespace kiln::compiler
