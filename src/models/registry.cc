#include "models/registry.h"

#include <algorithm>

#include "core/error.h"

namespace kiln::models {

void Registry::add(Family family) { adapters_.emplace_back(std::move(family)); }

const Adapter& Registry::find(const checkpoint::HfConfig& config) const {
  const auto archs = config.architectures();
  for (const auto& arch : archs) {
    for (const auto& a : adapters_) {
      const auto names = a.architectures();
      if (std::find(names.begin(), names.end(), arch) != names.end()) return a;
    }
  }
  const std::string type = config.model_type();
  if (archs.empty() && !type.empty()) {
    for (const auto& a : adapters_) {
      const auto types = a.model_types();
      if (std::find(types.begin(), types.end(), type) != types.end()) return a;
    }
  }
  std::string supported;
  for (const auto& name : supported_architectures()) supported += (supported.empty() ? "" : ", ") + name;
  std::string found;
  for (const auto& a : archs) found += (found.empty() ? "" : ", ") + a;
  throw_error(config.file().string(), ": unknown architecture ",
              found.empty() ? "(no 'architectures', model_type '" + type + "')" : "'" + found + "'",
              "; supported: ", supported);
}

std::vector<std::string> Registry::supported_architectures() const {
  std::vector<std::string> out;
  for (const auto& a : adapters_) {
    for (auto name : a.architectures()) out.emplace_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const Registry& Registry::builtin() {
  static const Registry registry = [] {
    Registry r;
    register_llama(r);
    register_qwen_v1(r);
    register_internlm2(r);
    register_baichuan(r);
    register_mixtral(r);
    register_falcon(r);
    register_gptj(r);
    register_gpt2(r);
    register_phi(r);
    register_chatglm(r);
    return r;
  }();
  return registry;
}

}  // namespace kiln::models
