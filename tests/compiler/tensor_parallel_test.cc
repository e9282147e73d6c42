// Tensor-parallel splitting, checked against index arithmetic written here:
// each element of a rank's piece is traced back to its row/column of the full tensor.
#include "compiler/tensor_parallel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace kiln::compiler {
namespace {

using models::Layout;
using ::testing::HasSubstr;

// Element (r, c) of the full tensor is encoded as r * 1000 + c, so every value says where it came from.
FloatTensor numbered(int64_t rows, int64_t cols) {
  FloatTensor t(cols > 0 ? Shape{rows, cols} : Shape{rows});
  const int64_t width = cols > 0 ? cols : 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < width; ++c) t.values[static_cast<std::size_t>(r * width + c)] = float(r * 1000 + c);
  }
  return t;
}

float at(const FloatTensor& t, int64_t r, int64_t c) {
  const int64_t width = t.shape.size() > 1 ? t.shape[1] : 1;
  return t.values.at(static_cast<std::size_t>(r * width + c));
}

ModelSpec gqa_spec() {
  ModelSpec s;
  s.hf_architecture = "TestForCausalLM";
  s.hidden_size = 24;
  s.num_heads = 8;
  s.num_kv_heads = 4;  // GQA, 2 q heads per KV head
  s.head_dim = 3;
  s.intermediate_size = 12;
  return s;
}

// The full-tensor row that row `i` of rank `rank`'s qkv piece must hold:
// q heads [rank*nh/tp, (rank+1)*nh/tp), then k heads and v heads [rank*kv/tp, ...).
int64_t qkv_source_row(const ModelSpec& s, int rank, int tp, int64_t i) {
  const int64_t d = s.head_dim, q_heads = s.num_heads / tp, kv_heads = s.num_kv_heads / tp;
  if (i < q_heads * d) return (rank * q_heads) * d + i;
  i -= q_heads * d;
  if (i < kv_heads * d) return s.num_heads * d + (rank * kv_heads) * d + i;
  i -= kv_heads * d;
  return (s.num_heads + s.num_kv_heads) * d + (rank * kv_heads) * d + i;
}

TEST(SplitForRank, QkvGivesEachRankItsQAndKvHeads) {
  const ModelSpec s = gqa_spec();
  for (const bool bias : {false, true}) {
    const FloatTensor full = numbered(s.qkv_rows(), bias ? 0 : s.hidden_size);
    for (int tp : {1, 2, 4}) {
      for (int rank = 0; rank < tp; ++rank) {
        SCOPED_TRACE(testing::Message() << "bias " << bias << " tp " << tp << " rank " << rank);
        const FloatTensor piece = split_for_rank(full, Layout::qkv, s, rank, tp);
        const int64_t rows = s.qkv_rows() / tp;
        ASSERT_EQ(piece.shape[0], rows);
        ASSERT_EQ(piece.shape.size(), full.shape.size());
        ASSERT_EQ(piece.values.size(), static_cast<std::size_t>(rows * (bias ? 1 : s.hidden_size)));
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t src = qkv_source_row(s, rank, tp, i);
          for (int64_t c = 0; c < (bias ? 1 : s.hidden_size); ++c) {
            ASSERT_EQ(at(piece, i, c), float(src * 1000 + c)) << "row " << i << " col " << c;
          }
        }
      }
    }
  }
}

TEST(SplitForRank, QkvWithOneHeadOfEachPerRank) {
  // MHA corner: kv heads == heads, tp == heads: one head of each of q, k, v per rank.
  ModelSpec s = gqa_spec();
  s.num_kv_heads = 8;
  const FloatTensor full = numbered(s.qkv_rows(), 2);
  for (int rank = 0; rank < 8; ++rank) {
    const FloatTensor piece = split_for_rank(full, Layout::qkv, s, rank, 8);
    ASSERT_EQ(piece.shape, (Shape{9, 2}));
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(at(piece, i, 0), float((rank * 3 + i) * 1000));
      EXPECT_EQ(at(piece, 3 + i, 0), float((24 + rank * 3 + i) * 1000));
      EXPECT_EQ(at(piece, 6 + i, 0), float((48 + rank * 3 + i) * 1000));
    }
  }
}

TEST(SplitForRank, QkvReplicatesKvHeadsWhenRanksOutnumberThem) {
  ModelSpec s = gqa_spec();  // 8 heads, 4 KV heads: with tp 8 each rank has 1 q head
  const FloatTensor full = numbered(s.qkv_rows(), s.hidden_size);
  const int64_t d = s.head_dim;
  for (int rank = 0; rank < 8; ++rank) {
    const FloatTensor part = split_for_rank(full, models::Layout::qkv, s, rank, 8);
    ASSERT_EQ(part.shape, (Shape{3 * d, s.hidden_size}));
    const int64_t kv_head = rank / 2;  // query head `rank` belongs to KV head rank / (8 / 4)
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t c = 0; c < s.hidden_size; ++c) {
        EXPECT_EQ(at(part, i, c), at(full, rank * d + i, c));
        EXPECT_EQ(at(part, d + i, c), at(full, s.num_heads * d + kv_head * d + i, c));
        EXPECT_EQ(at(part, 2 * d + i, c), at(full, (s.num_heads + s.num_kv_heads) * d + kv_head * d + i, c));
      }
    }
  }
}

TEST(SplitForRank, GateUpGivesEachRankASliceOfGateAndOfUp) {
  const ModelSpec s = gqa_spec();
  const int64_t inner = s.intermediate_size;
  const FloatTensor full = numbered(2 * inner, 5);
  for (int tp : {2, 3, 4}) {
    const int64_t n = inner / tp;
    for (int rank = 0; rank < tp; ++rank) {
      SCOPED_TRACE(testing::Message() << "tp " << tp << " rank " << rank);
      const FloatTensor piece = split_for_rank(full, Layout::gate_up, s, rank, tp);
      ASSERT_EQ(piece.shape, (Shape{2 * n, 5}));
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t c = 0; c < 5; ++c) {
          ASSERT_EQ(at(piece, i, c), float((rank * n + i) * 1000 + c)) << "gate row " << i;
          ASSERT_EQ(at(piece, n + i, c), float((inner + rank * n + i) * 1000 + c)) << "up row " << i;
        }
      }
    }
  }
}

TEST(SplitForRank, RowLayoutSlicesColumns) {
  const ModelSpec s = gqa_spec();
  const FloatTensor full = numbered(s.hidden_size, s.q_size());  // attn.out: [hidden, q_size]
  for (int tp : {2, 4, 8}) {
    const int64_t n = s.q_size() / tp;
    for (int rank = 0; rank < tp; ++rank) {
      const FloatTensor piece = split_for_rank(full, Layout::row, s, rank, tp);
      ASSERT_EQ(piece.shape, (Shape{s.hidden_size, n}));
      for (int64_t r = 0; r < s.hidden_size; ++r) {
        for (int64_t c = 0; c < n; ++c) ASSERT_EQ(at(piece, r, c), float(r * 1000 + rank * n + c));
      }
    }
  }
}

TEST(SplitForRank, ColumnLayoutSlicesRows) {
  const ModelSpec s = gqa_spec();
  for (const int64_t cols : {int64_t{0}, int64_t{7}}) {  // 1-D (a bias) and 2-D
    const FloatTensor full = numbered(12, cols);
    for (int tp : {2, 3, 4, 6}) {
      const int64_t n = 12 / tp;
      for (int rank = 0; rank < tp; ++rank) {
        const FloatTensor piece = split_for_rank(full, Layout::column, s, rank, tp);
        ASSERT_EQ(piece.shape[0], n);
        ASSERT_EQ(piece.shape.size(), full.shape.size());
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < std::max<int64_t>(cols, 1); ++c) {
            ASSERT_EQ(at(piece, r, c), float((rank * n + r) * 1000 + c));
          }
        }
      }
    }
  }
}

TEST(SplitForRank, ReplicatedAndTp1ReturnTheWholeTensor) {
  const ModelSpec s = gqa_spec();
  const FloatTensor full = numbered(s.qkv_rows(), 4);
  for (int rank = 0; rank < 4; ++rank) {
    const FloatTensor piece = split_for_rank(full, Layout::replicated, s, rank, 4);
    EXPECT_EQ(piece.shape, full.shape);
    EXPECT_EQ(piece.values, full.values);
  }
  for (Layout layout : {Layout::qkv, Layout::column}) {
    const FloatTensor piece = split_for_rank(full, layout, s, 0, 1);
    EXPECT_EQ(piece.values, full.values);
  }
}

// Reassembles the ranks' pieces the way each layout splits, and compares with the full tensor.
FloatTensor reassemble(const std::vector<FloatTensor>& pieces, Layout layout, const ModelSpec& s) {
  const int tp = static_cast<int>(pieces.size());
  FloatTensor out;
  auto rows_of = [&](const FloatTensor& p, int64_t begin, int64_t count) {
    const int64_t width = p.shape.size() > 1 ? p.shape[1] : 1;
    out.values.insert(out.values.end(), p.values.begin() + begin * width, p.values.begin() + (begin + count) * width);
  };
  switch (layout) {
    case Layout::column:
      for (const auto& p : pieces) rows_of(p, 0, p.shape[0]);
      out.shape = pieces[0].shape;
      out.shape[0] *= tp;
      break;
    case Layout::row: {
      const int64_t rows = pieces[0].shape[0], n = pieces[0].shape[1];
      out.shape = {rows, n * tp};
      for (int64_t r = 0; r < rows; ++r) {
        for (const auto& p : pieces)
          out.values.insert(out.values.end(), p.values.begin() + r * n, p.values.begin() + (r + 1) * n);
      }
      break;
    }
    case Layout::qkv: {
      const int64_t q = s.q_size() / tp, kv = s.kv_size() / tp;
      for (const auto& p : pieces) rows_of(p, 0, q);
      for (const auto& p : pieces) rows_of(p, q, kv);
      for (const auto& p : pieces) rows_of(p, q + kv, kv);
      out.shape = pieces[0].shape;
      out.shape[0] = s.qkv_rows();
      break;
    }
    case Layout::gate_up: {
      const int64_t n = pieces[0].shape[0] / 2;
      for (const auto& p : pieces) rows_of(p, 0, n);
      for (const auto& p : pieces) rows_of(p, n, n);
      out.shape = pieces[0].shape;
      out.shape[0] = 2 * n * tp;
      break;
    }
    case Layout::replicated: return pieces[0];
  }
  return out;
}

TEST(SplitForRank, ReassemblingAllRanksReproducesTheFullTensor) {
  const ModelSpec s = gqa_spec();
  struct Case {
    Layout layout;
    Shape shape;
  };
  const Case cases[] = {
      {Layout::qkv, {s.qkv_rows(), s.hidden_size}},
      {Layout::qkv, {s.qkv_rows()}},
      {Layout::gate_up, {2 * s.intermediate_size, 24}},
      {Layout::row, {24, s.q_size()}},
      {Layout::row, {24, s.intermediate_size}},
      {Layout::column, {48, 24}},
      {Layout::column, {48}},
  };
  for (const auto& c : cases) {
    // Distinct pseudo-random values, not the numbered pattern, so a misplaced block cannot match by accident.
    FloatTensor full(c.shape);
    for (std::size_t i = 0; i < full.values.size(); ++i) full.values[i] = float((i * 7919) % 100003) * 0.5f;
    for (int tp : {1, 2, 4}) {
      SCOPED_TRACE(testing::Message() << models::layout_name(c.layout) << " " << shape_str(c.shape) << " tp " << tp);
      std::vector<FloatTensor> pieces;
      std::size_t total = 0;
      for (int rank = 0; rank < tp; ++rank) {
        pieces.push_back(split_for_rank(full, c.layout, s, rank, tp));
        total += pieces.back().values.size();
      }
      EXPECT_EQ(total, full.values.size()) << "pieces must partition the tensor";
      const FloatTensor back = reassemble(pieces, c.layout, s);
      EXPECT_EQ(back.shape, full.shape);
      EXPECT_EQ(back.values, full.values);
    }
  }
}

std::string split_error(const ModelSpec& s, int tp) {
  try {
    check_splittable(s, tp);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CheckSplittable, AcceptsDivisibleSpecs) {
  const ModelSpec s = gqa_spec();  // 8 heads, 4 KV heads, intermediate 12
  for (int tp : {1, 2, 4}) EXPECT_NO_THROW(check_splittable(s, tp)) << tp;
}

TEST(CheckSplittable, NamesWhatIsNotDivisible) {
  ModelSpec s = gqa_spec();
  std::string message = split_error(s, 3);  // 8 heads
  EXPECT_THAT(message, HasSubstr("num_attention_heads"));
  EXPECT_THAT(message, HasSubstr("(8)"));
  EXPECT_THAT(message, HasSubstr("3"));
  EXPECT_THAT(message, HasSubstr("TestForCausalLM"));

  s.intermediate_size = 16;
  EXPECT_EQ(split_error(s, 8), "no error");  // 4 KV heads replicated over 8 ranks
  s.intermediate_size = 12;
  ModelSpec odd = s;
  odd.num_heads = 12;
  odd.num_kv_heads = 3;
  message = split_error(odd, 2);  // 3 KV heads neither divide nor are divisible by 2
  EXPECT_THAT(message, HasSubstr("KV heads"));
  EXPECT_THAT(message, HasSubstr("(3)"));

  s.intermediate_size = 10;
  message = split_error(s, 4);  // heads fine, 10 % 4 != 0
  EXPECT_THAT(message, HasSubstr("intermediate_size"));
  EXPECT_THAT(message, HasSubstr("(10)"));

  EXPECT_THAT(split_error(s, 0), HasSubstr("at least 1"));
  EXPECT_THAT(split_error(s, -2), HasSubstr("at least 1"));
  EXPECT_EQ(split_error(s, 1), "no error");  // tp 1 never needs to divide
}

}  // namespace
}  // namespace kiln::compiler
