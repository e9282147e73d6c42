// The adapters kiln knows, and the choice of one for a config.json by its
// `architectures` entry (or, failing that, its `model_type`).
#pragma once

#include <memory>
#include <vector>

#include "models/adapter.h"

namespace kiln::models {

class Registry {
 public:
  void add(std::unique_ptr<Adapter> adapter);
  // Throws kiln::Error listing the supported architectures when none matches.
  const Adapter& find(const checkpoint::HfConfig& config) const;
  std::vector<std::string> supported_architectures() const;

  // Every adapter of the project, registered once.
  static const Registry& builtin();

 private:
  std::vector<std::unique_ptr<Adapter>> adapters_;
};

// One registration function per adapter file.
void register_llama(Registry& registry);
void register_qwen_v1(Registry& registry);
void register_internlm2(Registry& registry);
void register_baichuan(Registry& registry);

}  // namespace kiln::models
