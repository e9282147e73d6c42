// What an engine was compiled for: a backend and its architecture. An engine
// runs only on the target it was built for, as TensorRT-LLM engines do.
#pragma once

#include <string>

namespace kiln::engine {

struct Target {
  std::string backend;  // "cpu" or "cuda"
  std::string arch;     // cpu: machine ("x86_64", "aarch64"); cuda: "sm_90"

  std::string describe() const { return backend + " " + arch; }
  bool operator==(const Target&) const = default;
};

// The CPU of this machine.
Target host_cpu_target();

}  // namespace kiln::engine
