// The adapters kiln knows, and the choice of one for a config.json by its
// `architectures` entry (or, failing that, its `model_type`).
#pragma once

#include <vector>

#include "models/adapter.h"

namespace kiln::models {

class Registry {
 public:
  void add(Family family);
  // Throws kiln::Error listing the supported architectures when none matches.
  const Adapter& find(const checkpoint::HfConfig& config) const;
  std::vector<std::string> supported_architectures() const;

  // Every adapter of the project, registered once.
  static const Registry& builtin();

 private:
  std::vector<Adapter> adapters_;
};

// One registration function per family file.
void register_llama(Registry& registry);
void register_qwen_v1(Registry& registry);
void register_internlm2(Registry& registry);
void register_baichuan(Registry& registry);
void register_mixtral(Registry& registry);
void register_falcon(Registry& registry);
void register_gptj(Registry& registry);
void register_gpt2(Registry& registry);
void register_phi(Registry& registry);
void register_chatglm(Registry& registry);

}  // namespace kiln::models
