#include "runtime/gemm_plan.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/error.h"

namespace kiln::runtime {
namespace {

using nlohmann::json;

json algo_to_json(const GemmAlgo& a) {
  return {{"id", a.id},
          {"tile_id", a.tile_id},
          {"stages_id", a.stages_id},
          {"splitk_num", a.splitk_num},
          {"reduction_scheme", a.reduction_scheme},
          {"cta_swizzling", a.cta_swizzling},
          {"custom_option", a.custom_option},
          {"inner_shape_id", a.inner_shape_id},
          {"cluster_shape_id", a.cluster_shape_id}};
}

// An integer field that must fit T (the attribute's C type).
template <typename T>
T integer(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_integer()) throw_error("'", key, "' is not an integer");
  const auto x = v.get<int64_t>();
  if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      x > static_cast<int64_t>(std::numeric_limits<T>::max())) {
    throw_error("'", key, "' = ", x, " is out of range");
  }
  return static_cast<T>(x);
}

GemmAlgo algo_from_json(const json& j) {
  GemmAlgo a;
  a.id = integer<int32_t>(j, "id");
  a.tile_id = integer<uint32_t>(j, "tile_id");
  a.stages_id = integer<uint32_t>(j, "stages_id");
  a.splitk_num = integer<int32_t>(j, "splitk_num");
  a.reduction_scheme = integer<uint32_t>(j, "reduction_scheme");
  a.cta_swizzling = integer<uint32_t>(j, "cta_swizzling");
  a.custom_option = integer<uint32_t>(j, "custom_option");
  a.inner_shape_id = integer<uint16_t>(j, "inner_shape_id");
  a.cluster_shape_id = integer<uint16_t>(j, "cluster_shape_id");
  return a;
}

}  // namespace

std::vector<int64_t> GemmPlan::buckets(int64_t max_m) {
  std::vector<int64_t> b;
  if (max_m <= kSmallestBucket / 2) return b;  // the gemv's rows only
  for (int64_t m = kSmallestBucket; m < max_m; m *= 2) b.push_back(m);
  b.push_back(max_m);
  return b;
}

GemmPlan GemmPlan::for_engine(const ModelSpec& s, int tp, const engine::Limits& limits, DType dtype,
                              engine::Quantization quantization) {
  GemmPlan plan;
  plan.dtype = dtype;
  if (dtype != DType::f16 && dtype != DType::bf16) {
    plan.reason = concat(dtype_name(dtype), " engines run cublasSgemm (exact fp32, no TF32): nothing to tune");
    return plan;
  }
  if (tp < 1) throw_error("internal: tensor-parallel degree ", tp);
  // A step has at most max_num_tokens rows (max_batch_size when every sequence decodes).
  const int64_t step_rows = std::max(limits.max_batch_size, limits.max_num_tokens);
  const int64_t H = s.hidden_size, I = s.intermediate_size / tp;
  const int64_t q = s.num_heads / tp * s.head_dim, kv = s.kv_heads_per_rank(tp) * s.head_dim;
  struct Use {
    const char* name;
    int64_t n, k, max_m;
    bool accumulate;
    bool projection = true;  // quantized in an FP8 engine (the LM head is not)
  };
  std::vector<Use> uses = {{"qkv", q + 2 * kv, H, step_rows, false}, {"out", H, q, step_rows, true}};
  if (s.num_experts > 0) {
    // An expert runs the rows routed to it: up to every row of the step.
    uses.push_back({"expert_gate_up", 2 * I, H, step_rows, false});
    uses.push_back({"expert_down", H, I, step_rows, true});
  } else {
    if (s.gated_mlp) {
      uses.push_back({"gate_up", 2 * I, H, step_rows, false});
    } else {
      uses.push_back({"up", I, H, step_rows, false});
    }
    uses.push_back({"down", H, I, step_rows, true});
  }
  // The LM head runs the rows whose next token is wanted: one per sequence.
  uses.push_back({"lm_head", s.vocab_size, H, limits.max_batch_size, false, false});
  for (const Use& u : uses) {
    if (buckets(u.max_m).empty() || u.n <= 0 || u.k <= 0) continue;
    const DType operands = u.projection && quantization == engine::Quantization::fp8 ? DType::f8e4m3 : dtype;
    auto same = std::find_if(plan.problems.begin(), plan.problems.end(),
                             [&](const GemmProblem& p) { return p.n == u.n && p.k == u.k && p.dtype == operands; });
    if (same == plan.problems.end()) {
      plan.problems.push_back(GemmProblem{{u.name}, u.n, u.k, u.max_m, u.accumulate, {}, operands});
    } else {
      same->uses.push_back(u.name);
      same->max_m = std::max(same->max_m, u.max_m);
      same->accumulate = same->accumulate || u.accumulate;
    }
  }
  return plan;
}

GemmPlan GemmPlan::for_manifest(const engine::Manifest& m) {
  GemmPlan plan = for_engine(m.spec, m.tensor_parallel, m.limits, m.dtype, m.quantization);
  plan.arch = m.target.arch;
  return plan;
}

json GemmPlan::to_json() const {
  json problems_json = json::array();
  for (const GemmProblem& p : problems) {
    json choices_json = json::array();
    for (const GemmChoice& c : p.choices) {
      choices_json.push_back({{"m", c.m},
                              {"algo", algo_to_json(c.algo)},
                              {"us", c.us},
                              {"default_algo", algo_to_json(c.default_algo)},
                              {"default_us", c.default_us},
                              {"candidates", c.candidates}});
    }
    problems_json.push_back({{"uses", p.uses},
                             {"n", p.n},
                             {"k", p.k},
                             {"max_m", p.max_m},
                             {"accumulate", p.accumulate},
                             {"dtype", dtype_name(p.dtype)},
                             {"choices", choices_json}});
  }
  json j = {{"version", kFormatVersion},
            {"library", "cublasLt"},
            {"dtype", dtype_name(dtype)},
            {"tuned", tuned},
            {"arch", arch},
            {"problems", problems_json}};
  if (!reason.empty()) j["reason"] = reason;
  if (tuned) {
    j["device"] = device;
    j["cublaslt_version"] = cublaslt_version;
    j["workspace_bytes"] = workspace_bytes;
    j["seconds"] = seconds;
    j["summary"] = {{"choices", tuned_choices()}, {"mean_speedup", mean_speedup()}};
  }
  return j;
}

GemmPlan GemmPlan::from_json(const json& j) {
  GemmPlan plan;
  const bool versioned = j.is_object() && j.contains("version") && j.at("version").is_number_integer();
  const int64_t version = versioned ? j.at("version").get<int64_t>() : 0;
  if (version != kFormatVersion) {
    throw_error("kernel_choices.", kGemmChoicesKey, " has version ", version, "; this kiln reads version ",
                kFormatVersion);
  }
  try {
    const std::string dtype = j.at("dtype").get<std::string>();
    if (!parse_dtype(dtype, &plan.dtype)) throw_error("unknown dtype '", dtype, "'");
    plan.tuned = j.at("tuned").get<bool>();
    plan.reason = j.value("reason", "");
    plan.arch = j.value("arch", "");
    plan.device = j.value("device", "");
    plan.cublaslt_version = j.value("cublaslt_version", int64_t{0});
    plan.workspace_bytes = j.value("workspace_bytes", int64_t{0});
    plan.seconds = j.value("seconds", 0.0);
    for (const json& pj : j.at("problems")) {
      GemmProblem p;
      p.uses = pj.at("uses").get<std::vector<std::string>>();
      p.n = pj.at("n").get<int64_t>();
      p.k = pj.at("k").get<int64_t>();
      p.max_m = pj.at("max_m").get<int64_t>();
      p.accumulate = pj.value("accumulate", false);
      // Plans from before FP8 engines hold only the engine's dtype.
      p.dtype = plan.dtype;
      if (pj.contains("dtype") && !parse_dtype(pj.at("dtype").get<std::string>(), &p.dtype)) {
        throw_error("problem n=", p.n, " k=", p.k, " has unknown dtype '", pj.at("dtype").get<std::string>(), "'");
      }
      for (const json& cj : pj.at("choices")) {
        GemmChoice c;
        c.m = cj.at("m").get<int64_t>();
        c.algo = algo_from_json(cj.at("algo"));
        c.us = cj.at("us").get<double>();
        c.default_algo = algo_from_json(cj.at("default_algo"));
        c.default_us = cj.at("default_us").get<double>();
        c.candidates = cj.value("candidates", 0);
        if (!p.choices.empty() && c.m <= p.choices.back().m) throw_error("m buckets are not ascending");
        p.choices.push_back(c);
      }
      plan.problems.push_back(std::move(p));
    }
  } catch (const json::exception& e) {
    throw_error("kernel_choices.", kGemmChoicesKey, " is malformed: ", e.what());
  } catch (const Error& e) {
    throw_error("kernel_choices.", kGemmChoicesKey, " is malformed: ", e.what());
  }
  return plan;
}

GemmPlan GemmPlan::from_kernel_choices(const json& kernel_choices) {
  if (!kernel_choices.is_object() || !kernel_choices.contains(kGemmChoicesKey)) {
    GemmPlan plan;
    plan.reason = "the engine records no GEMM choices";
    return plan;
  }
  return from_json(kernel_choices.at(kGemmChoicesKey));
}

const GemmProblem* GemmPlan::find(int64_t n, int64_t k, std::optional<DType> d) const {
  for (const GemmProblem& p : problems) {
    if (p.n == n && p.k == k && p.dtype == d.value_or(dtype)) return &p;
  }
  return nullptr;
}

const GemmChoice* GemmPlan::lookup(int64_t n, int64_t k, int64_t m, DType d) const {
  if (!tuned) return nullptr;
  const GemmProblem* p = find(n, k, d);
  if (p == nullptr) return nullptr;
  auto it = std::lower_bound(p->choices.begin(), p->choices.end(), m,
                             [](const GemmChoice& c, int64_t rows) { return c.m < rows; });
  return it == p->choices.end() ? nullptr : &*it;
}

int GemmPlan::tuned_choices() const {
  int n = 0;
  for (const GemmProblem& p : problems) n += static_cast<int>(p.choices.size());
  return n;
}

double GemmPlan::mean_speedup() const {
  double sum = 0;
  int n = 0;
  for (const GemmProblem& p : problems) {
    for (const GemmChoice& c : p.choices) sum += c.speedup(), ++n;
  }
  return n ? sum / n : 1.0;
}

}  // namespace kiln::runtime
