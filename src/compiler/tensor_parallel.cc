#include "compiler/tensor_parallel.h"

#include <cstring>

#include "core/error.h"

namespace kiln::compiler {

void check_splittable(const ModelSpec& s, int tp) {
  if (tp < 1) throw_error("--tp must be at least 1, got ", tp);
  if (tp == 1) return;
  auto require = [&](int64_t value, const char* what) {
    if (value % tp != 0)
      throw_error("cannot split ", s.hf_architecture, " ", tp, " ways: ", what, " (", value,
                  ") is not divisible by the tensor-parallel degree ", tp);
  };
  require(s.num_heads, "num_attention_heads");
  // Fewer KV heads than ranks (multi-query, small GQA groups) are replicated:
  // each rank keeps the one KV head its query heads read.
  if (s.num_kv_heads >= tp) require(s.num_kv_heads, "the number of KV heads");
  if (s.num_kv_heads < tp && tp % s.num_kv_heads != 0) {
    throw_error("cannot split ", s.hf_architecture, " ", tp, " ways: the number of KV heads (", s.num_kv_heads,
                ") neither divides nor is divisible by the tensor-parallel degree ", tp);
  }
  require(s.intermediate_size, "intermediate_size");
}

RankSlice rank_slice(const Shape& full, models::Layout layout, const ModelSpec& s, int rank, int tp) {
  RankSlice out;
  out.shape = full;
  const int64_t rows = full.empty() ? 1 : full[0];
  out.cols = 1;
  for (std::size_t i = 1; i < full.size(); ++i) out.cols *= full[i];
  if (tp == 1 || layout == models::Layout::replicated) {
    out.rows = {{0, rows}};
    return out;
  }
  switch (layout) {
    case models::Layout::column: {
      const int64_t n = rows / tp;
      out.rows = {{rank * n, n}};
      out.shape[0] = n;
      break;
    }
    case models::Layout::row: {
      const int64_t n = full.at(1) / tp;
      out.rows = {{0, rows}};
      out.col_begin = rank * n;
      out.cols = n;
      out.shape = {rows, n};
      break;
    }
    case models::Layout::qkv: {
      const int64_t q = s.q_size() / tp, kv = s.kv_heads_per_rank(tp) * s.head_dim;
      // With replicated KV heads, rank r's query heads read KV head r * kv_heads / tp.
      const int64_t kv_first = s.num_kv_heads >= tp ? rank * kv : rank * s.num_kv_heads / tp * s.head_dim;
      out.rows = {{rank * q, q}, {s.q_size() + kv_first, kv}, {s.q_size() + s.kv_size() + kv_first, kv}};
      out.shape[0] = q + 2 * kv;
      break;
    }
    case models::Layout::gate_up: {
      const int64_t half = rows / 2, n = half / tp;
      out.rows = {{rank * n, n}, {half + rank * n, n}};
      out.shape[0] = 2 * n;
      break;
    }
    case models::Layout::replicated: break;
  }
  return out;
}

FloatTensor split_for_rank(const FloatTensor& full, models::Layout layout, const ModelSpec& s, int rank, int tp) {
  if (tp == 1 || layout == models::Layout::replicated) return full;
  const RankSlice slice = rank_slice(full.shape, layout, s, rank, tp);
  FloatTensor out(slice.shape);
  int64_t full_cols = 1;
  for (std::size_t i = 1; i < full.shape.size(); ++i) full_cols *= full.shape[i];
  float* dst = out.data();
  for (const auto& [first, count] : slice.rows) {
    for (int64_t r = first; r < first + count; ++r) {
      std::memcpy(dst, full.data() + r * full_cols + slice.col_begin,
                  static_cast<std::size_t>(slice.cols) * sizeof(float));
      dst += slice.cols;
    }
  }
  return out;
}

}  // namespace kiln::compiler
