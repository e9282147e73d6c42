// Splits canonical tensors across tensor-parallel ranks (Megatron style):
// qkv and gate_up by heads/rows of each part, column-parallel by output rows,
// row-parallel (attn.out, mlp.down) by input columns; the rest is replicated.
#pragma once

#include <utility>
#include <vector>

#include "core/model_spec.h"
#include "core/tensor.h"
#include "models/adapter.h"

namespace kiln::compiler {

// Throws kiln::Error when `spec` cannot be split `tp` ways (heads, KV heads,
// intermediate size not divisible).
void check_splittable(const ModelSpec& spec, int tp);

// What rank `rank` of `tp` holds of a canonical tensor of shape `full`: the
// rows `rows` (ranges of the full tensor's rows, concatenated in this order),
// each cut to the columns [col_begin, col_begin + cols). 1-D tensors have one
// column per row. The compiler copies exactly these rows and columns.
struct RankSlice {
  Shape shape;                                    // the rank's tensor
  std::vector<std::pair<int64_t, int64_t>> rows;  // (first row, row count) of the full tensor
  int64_t col_begin = 0;
  int64_t cols = 1;
};
RankSlice rank_slice(const Shape& full, models::Layout layout, const ModelSpec& spec, int rank, int tp);

// The rank's tensor itself: `full` gathered by rank_slice.
FloatTensor split_for_rank(const FloatTensor& full, models::Layout layout, const ModelSpec& spec, int rank, int tp);

}  // namespace kiln::compiler
