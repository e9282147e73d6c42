// Ahead-of-time compilation: HuggingFace checkpoint + options -> engine.
#pragma once

#include <string>
#include <vector>

#include "compiler/build_options.h"

namespace kiln::compiler {

struct BuildReport {
  std::string family;
  double seconds = 0;
  uint64_t engine_bytes = 0;
  int tensors = 0;
  std::vector<std::string> unused_checkpoint_tensors;
};

// Writes the engine atomically; on any error nothing is left at options.output.
BuildReport build_engine(const BuildOptions& options);

}  // namespace kiln::compiler
