#include "serving/serving_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <initializer_list>

#include "core/error.h"
#include "serving/properties_file.h"

extern char** environ;

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPropertiesFileName = "serving.properties";
constexpr std::string_view kFileOptionPrefix = "option.";
constexpr std::string_view kEnvironmentOptionPrefix = "OPTION_";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  constexpr std::string_view kBlanks = " \t\r\n\f\v";
  size_t first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(kBlanks) - first + 1));
}

// Every refusal has one shape: where and as what it was written, then the rule.
[[noreturn]] void refuse(const OptionSource& s, std::string_view requirement) {
  throw_error(s.origin, "=", s.value, ": ", s.name, " must be ", requirement);
}

int64_t parse_integer(const OptionSource& s, int64_t min, int64_t max, std::string_view requirement) {
  int64_t v = 0;
  const char* end = s.value.data() + s.value.size();
  auto [ptr, ec] = std::from_chars(s.value.data(), end, v);
  if (ec != std::errc() || ptr != end || v < min || v > max) refuse(s, requirement);
  return v;
}

int parse_positive_int(const OptionSource& s) {
  return static_cast<int>(parse_integer(s, 1, INT_MAX, "a positive integer"));
}

std::optional<int64_t> parse_token_limit(const OptionSource& s) {
  return parse_integer(s, 1, INT64_MAX, "a positive integer");
}

// Case-insensitive choice among lower-case names; returns the lower-case name.
std::string parse_choice(const OptionSource& s, std::initializer_list<std::string_view> choices) {
  std::string v = lower(s.value);
  if (std::find(choices.begin(), choices.end(), v) != choices.end()) return v;
  std::string allowed = "one of ";
  for (std::string_view c : choices) allowed += concat(allowed.ends_with(' ') ? "" : ", ", c);
  refuse(s, allowed);
}

void apply_model_id(ServingOptions& o, const OptionSource& s) {
  // Other URL schemes (gs://, https://, hub ids with a scheme) would otherwise be taken for a relative path.
  size_t scheme = s.value.find("://");
  if (scheme != std::string::npos) {
    bool s3_with_bucket = s.value.starts_with("s3://") && s.value.size() > 5 && s.value[5] != '/';
    if (!s3_with_bucket) refuse(s, "a local directory or an s3://bucket/prefix URL");
  }
  o.model_id = s.value;
}

void apply_tensor_parallel_degree(ServingOptions& o, const OptionSource& s) {
  if (lower(s.value) == "max") {
    o.tensor_parallel_all_devices = true;
    o.tensor_parallel_degree = 1;
    return;
  }
  o.tensor_parallel_all_devices = false;
  o.tensor_parallel_degree = static_cast<int>(parse_integer(s, 1, INT_MAX, "a positive integer or \"max\""));
}

void apply_dtype(ServingOptions& o, const OptionSource& s) {
  std::string name = parse_choice(s, {"auto", "fp32", "fp16", "bf16", "float32", "float16", "bfloat16"});
  if (name == "auto") {
    o.dtype.reset();
    return;
  }
  DType t;
  parse_dtype(name, &t);  // every name above but "auto" is a dtype name
  o.dtype = t;
}

void apply_quantize(ServingOptions& o, const OptionSource& s) {
  if (engine::parse_quantization(lower(s.value), &o.quantization)) return;
  throw_error(s.origin, "=", s.value, ": quantize '", s.value,
              "' is not supported yet; kiln builds fp8 (E4M3 weights, on GPUs from sm_89) or unquantized engines ",
              "(leave quantize unset, or none)");
}

void apply_gpu_memory_utilization(ServingOptions& o, const OptionSource& s) {
  double v = 0;
  const char* end = s.value.data() + s.value.size();
  auto [ptr, ec] = std::from_chars(s.value.data(), end, v);
  // Written as !(in range) so that NaN is refused too.
  if (ec != std::errc() || ptr != end || !(v > 0.0 && v <= 1.0)) refuse(s, "a number in (0, 1]");
  o.gpu_memory_utilization = v;
}

using ApplyOption = void (*)(ServingOptions&, const OptionSource&);

struct OptionRule {
  std::string_view name;
  ApplyOption apply;
};

const OptionRule kOptionRules[] = {
    {"model_id", apply_model_id},
    {"tensor_parallel_degree", apply_tensor_parallel_degree},
    {"dtype", apply_dtype},
    {"target",
     [](ServingOptions& o, const OptionSource& s) {
       o.target = parse_choice(s, {"auto", "cpu", "cuda"});
     }},
    {"rolling_batch",
     [](ServingOptions& o, const OptionSource& s) {
       o.rolling_batch = parse_choice(s, {"auto", "disable", "trtllm", "lmi-dist", "vllm", "scheduler"});
     }},
    {"max_rolling_batch_size",
     [](ServingOptions& o, const OptionSource& s) { o.max_rolling_batch_size = parse_positive_int(s); }},
    {"max_input_len", [](ServingOptions& o, const OptionSource& s) { o.max_input_len = parse_token_limit(s); }},
    {"max_output_len", [](ServingOptions& o, const OptionSource& s) { o.max_output_len = parse_token_limit(s); }},
    {"max_num_tokens", [](ServingOptions& o, const OptionSource& s) { o.max_num_tokens = parse_token_limit(s); }},
    {"max_new_tokens", [](ServingOptions& o, const OptionSource& s) { o.max_new_tokens = parse_positive_int(s); }},
    {"max_queue_size", [](ServingOptions& o, const OptionSource& s) { o.max_queue_size = parse_positive_int(s); }},
    {"gpu_memory_utilization", apply_gpu_memory_utilization},
    {"verify_weights",
     [](ServingOptions& o, const OptionSource& s) {
       o.verify_weights = parse_choice(s, {"true", "false"}) == "true";
     }},
    {"quantize", apply_quantize},
    {"kv_cache_dtype",
     [](ServingOptions& o, const OptionSource& s) {
       o.kv_cache_dtype = parse_choice(s, {"auto", "fp8", "fp8_e4m3", "float8_e4m3fn"});
     }},
    {"host", [](ServingOptions& o, const OptionSource& s) { o.host = s.value; }},
    {"port",
     [](ServingOptions& o, const OptionSource& s) {
       o.port = static_cast<int>(parse_integer(s, 0, 65535, "an integer from 0 to 65535 (0: any free port)"));
     }},
    {"cache_dir", [](ServingOptions& o, const OptionSource& s) { o.cache_dir = s.value; }},
};

// LMI options that mean something to LMI's Python engines but nothing to kiln;
// common in existing files, so they get a note rather than a warning.
struct IgnoredOption {
  std::string_view name;
  std::string_view reason;
};

const IgnoredOption kIgnoredOptions[] = {
    {"trust_remote_code", "kiln executes no model code"},
    {"entrypoint", "kiln serves every model with its own engine"},
    {"enable_streaming", "clients choose streaming per request"},
    {"model_loading_timeout", "kiln has no model loading timeout"},
};

const OptionRule* find_rule(std::string_view name) {
  for (const OptionRule& r : kOptionRules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "; did you mean X?" for a known option within two edits of a misspelt one.
std::string suggestion_for(std::string_view name) {
  std::string_view best;
  size_t best_distance = 3;
  auto consider = [&](std::string_view known) {
    size_t d = edit_distance(name, known);
    if (d < best_distance) best = known, best_distance = d;
  };
  for (const OptionRule& r : kOptionRules) consider(r.name);
  for (const IgnoredOption& i : kIgnoredOptions) consider(i.name);
  return best.empty() ? std::string() : concat("; did you mean ", best, "?");
}

// Sorts what was written into options in effect, notes and warnings.
class SettingCollector {
 public:
  explicit SettingCollector(ServingOptions& options) : options_(options) {}

  void add_property(const Property& p, const std::string& file) {
    std::string where = concat(file, ":", p.line);
    std::string value = trim(p.value);
    if (p.key.starts_with(kFileOptionPrefix)) {
      add_option(lower(p.key.substr(kFileOptionPrefix.size())), value, concat(where, ": ", p.key));
    } else if (p.key == "engine") {
      options_.notes.push_back(concat(where, ": engine=", value, " is ignored: kiln serves with its own engine"));
    } else if (find_rule(lower(p.key)) != nullptr) {
      // A kiln option without its prefix is a mistake LMI would also ignore; say how to write it.
      options_.warnings.push_back(concat(where, ": ", p.key, " is ignored: options are written option.", lower(p.key)));
    } else {
      // DJL Serving's own settings (job_queue_size, minWorkers, ...) have no meaning for kiln.
      options_.notes.push_back(concat(where, ": ", p.key, " is ignored: kiln reads only option.* keys"));
    }
  }

  void add_environment_variable(const std::string& name, const std::string& value) {
    if (!name.starts_with(kEnvironmentOptionPrefix)) return;
    add_option(lower(std::string_view(name).substr(kEnvironmentOptionPrefix.size())), trim(value), name);
  }

 private:
  void add_option(const std::string& name, const std::string& value, const std::string& origin) {
    if (value.empty()) return;  // an empty value counts as not given, so the file's or the default holds
    if (find_rule(name) == nullptr) {
      auto ignored = std::find_if(std::begin(kIgnoredOptions), std::end(kIgnoredOptions),
                                  [&](const IgnoredOption& i) { return i.name == name; });
      if (ignored != std::end(kIgnoredOptions)) {
        options_.notes.push_back(concat(origin, "=", value, " is ignored: ", ignored->reason));
      } else {
        options_.warnings.push_back(concat(origin, ": unknown option ", name, " is ignored", suggestion_for(name)));
      }
      return;
    }
    auto earlier = std::find_if(options_.sources.begin(), options_.sources.end(),
                                [&](const OptionSource& s) { return s.name == name; });
    OptionSource source{name, value, origin};
    if (earlier == options_.sources.end()) {
      options_.sources.push_back(std::move(source));
      return;
    }
    // Said aloud because a forgotten OPTION_* variable silently beating the file is hard to spot.
    options_.notes.push_back(concat(origin, "=", value, " overrides ", earlier->origin, "=", earlier->value));
    *earlier = std::move(source);
  }

  ServingOptions& options_;
};

fs::path default_cache_dir(const Environment& environment) {
  for (const auto& [name, value] : environment) {
    if (name == "HOME" && !value.empty()) return fs::path(value) / ".cache" / "kiln";
  }
  return "/tmp/kiln-cache";
}

}  // namespace

int ServingOptions::tensor_parallel_for(int visible_devices) const {
  return tensor_parallel_all_devices ? std::max(1, visible_devices) : tensor_parallel_degree;
}

const OptionSource* ServingOptions::source_of(std::string_view name) const {
  for (const OptionSource& s : sources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Environment process_environment() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    environment.emplace_back(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return environment;
}

ServingOptions load_serving_options(const fs::path& properties_dir, const Environment& environment) {
  ServingOptions options;
  SettingCollector collector(options);
  if (!properties_dir.empty()) {
    std::error_code ec;
    fs::file_status status = fs::status(properties_dir, ec);
    if (!fs::exists(status)) throw_error("properties directory ", properties_dir.string(), " does not exist");
    // LMI's configuration may carry nothing but environment variables: a directory without the file is fine.
    fs::path file = fs::is_directory(status) ? properties_dir / kPropertiesFileName : properties_dir;
    if (fs::exists(file)) {
      for (const Property& p : read_properties_file(file)) collector.add_property(p, file.string());
    }
  }
  for (const auto& [name, value] : environment) collector.add_environment_variable(name, value);

  // Only the settings in effect are checked, so a bad value in the file that the environment replaces does not stop a
  // start.
  for (const OptionSource& s : options.sources) find_rule(s.name)->apply(options, s);
  if (options.cache_dir.empty()) options.cache_dir = default_cache_dir(environment);
  return options;
}

}  // namespace kiln::serving
