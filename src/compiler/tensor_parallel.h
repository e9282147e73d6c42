// Splits canonical tensors across tensor-parallel ranks (Megatron style):
// qkv and gate_up by heads/rows of each part, column-parallel by output rows,
// row-parallel (attn.out, mlp.down) by input columns; the rest is replicated.
#pragma once

#include "core/model_spec.h"
#include "core/tensor.h"
#include "models/adapter.h"

namespace kiln::compiler {

// Throws kiln::Error when `spec` cannot be split `tp` ways (heads, KV heads,
// intermediate size not divisible).
void check_splittable(const ModelSpec& spec, int tp);

FloatTensor split_for_rank(const FloatTensor& full, models::Layout layout, const ModelSpec& spec, int rank, int tp);

}  // namespace kiln::compiler
