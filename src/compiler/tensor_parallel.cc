#include "compiler/tensor_parallel.h"

#include <cstring>

#include "core/error.h"

namespace kiln::compiler {
namespace {

// Appends rows [begin, begin + count) of `t` (viewed as [rows, cols]) to `out`.
void append_rows(const FloatTensor& t, int64_t begin, int64_t count, std::vector<float>& out) {
  const int64_t cols = t.shape.size() > 1 ? t.shape[1] : 1;
  out.insert(out.end(), t.values.begin() + begin * cols, t.values.begin() + (begin + count) * cols);
}

}  // namespace

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

FloatTensor split_for_rank(const FloatTensor& full, models::Layout layout, const ModelSpec& s, int rank, int tp) {
  if (tp == 1 || layout == models::Layout::replicated) return full;
  FloatTensor out;
  const int64_t rows = full.shape[0];
  switch (layout) {
    case models::Layout::column: {
      const int64_t n = rows / tp;
      append_rows(full, rank * n, n, out.values);
      out.shape = full.shape;
      out.shape[0] = n;
      break;
    }
    case models::Layout::row: {
      const int64_t cols = full.shape.at(1), n = cols / tp;
      out.shape = {rows, n};
      out.values.resize(static_cast<std::size_t>(rows * n));
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(out.values.data() + r * n, full.data() + r * cols + rank * n, n * sizeof(float));
      }
      break;
    }
    case models::Layout::qkv: {
      const int64_t q = s.q_size() / tp, kv = s.kv_heads_per_rank(tp) * s.head_dim;
      // With replicated KV heads, rank r's query heads read KV head r * kv_heads / tp.
      const int64_t kv_first = s.num_kv_heads >= tp ? rank * kv : rank * s.num_kv_heads / tp * s.head_dim;
      append_rows(full, rank * q, q, out.values);
      append_rows(full, s.q_size() + kv_first, kv, out.values);
      append_rows(full, s.q_size() + s.kv_size() + kv_first, kv, out.values);
      out.shape = full.shape;
      out.shape[0] = q + 2 * kv;
      break;
    }
    case models::Layout::gate_up: {
      const int64_t half = rows / 2, n = half / tp;
      append_rows(full, rank * n, n, out.values);
      append_rows(full, half + rank * n, n, out.values);
      out.shape = full.shape;
      out.shape[0] = 2 * n;
      break;
    }
    case models::Layout::replicated: break;
  }
  return out;
}

}  // namespace kiln::compiler
