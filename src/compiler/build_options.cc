#include "compiler/build_options.h"

#include "core/error.h"

namespace kiln::compiler {

DType parse_build_dtype(const std::string& name) {
  DType t;
  if (!parse_dtype(name, &t) || !(t == DType::f32 || t == DType::f16 || t == DType::bf16)) {
    throw_error("dtype '", name, "' is not a build dtype; use fp32, fp16 or bf16");
  }
  return t;
}

std::optional<DType> parse_kv_cache_dtype(const std::string& name) {
  if (name == "auto" || name.empty()) return std::nullopt;
  if (name == "fp8" || name == "fp8_e4m3" || name == "float8_e4m3fn") return DType::f8e4m3;
  throw_error("kv cache dtype '", name, "' is not one kiln builds; use fp8 (E4M3) or auto (the engine's dtype)");
}

}  // namespace kiln::compiler
