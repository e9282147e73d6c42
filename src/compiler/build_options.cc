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

}  // namespace kiln::compiler
