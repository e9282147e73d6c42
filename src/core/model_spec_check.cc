#include "core/model_spec_check.h"

#include <cmath>

#include "core/error.h"

namespace kiln {
namespace {

class SpecChecker {
 public:
  SpecChecker(std::string_view where, const SpecFieldNamer& namer) : where_(where), namer_(namer) {}

  std::string_view where() const { return where_; }
  std::string name(std::string_view field) const { return namer_ ? namer_(field) : std::string(field); }

  template <typename... Parts>
  [[noreturn]] void fail(std::string_view field, int64_t value, Parts&&... parts) const {
    throw_error(where_, ": ", name(field), " (", value, ") ", std::forward<Parts>(parts)...);
  }

  void in_range(std::string_view field, int64_t value, int64_t low, int64_t high) const {
    if (value < low || value > high) fail(field, value, "must be between ", low, " and ", high);
  }

  void finite(std::string_view field, double value, bool positive) const {
    if (!std::isfinite(value) || (positive ? value <= 0 : value < 0)) {
      throw_error(where_, ": ", name(field), " (", value, ") must be a finite ", positive ? "positive" : "non-negative",
                  " number");
    }
  }

 private:
  std::string_view where_;
  const SpecFieldNamer& namer_;
};

void check_rope(const ModelSpec& s, const SpecChecker& c) {
  const RopeSpec& r = s.rope;
  if (r.rotary_dim < 2 || r.rotary_dim > s.head_dim || r.rotary_dim % 2 != 0) {
    c.fail("rope.rotary_dim", r.rotary_dim, "must be even and between 2 and head_dim (", s.head_dim, ")");
  }
  c.finite("rope.theta", r.theta, true);
  c.finite("rope.factor", r.factor, true);
  if (r.scaling == RopeScaling::llama3 || r.scaling == RopeScaling::yarn) {
    c.finite("rope.low_freq_factor", r.low_freq_factor, true);
    c.finite("rope.high_freq_factor", r.high_freq_factor, true);
    // The llama3 ramp divides by their difference.
    if (r.high_freq_factor <= r.low_freq_factor) {
      throw_error(c.where(), ": ", c.name("rope.high_freq_factor"), " (", r.high_freq_factor, ") must exceed ",
                  c.name("rope.low_freq_factor"), " (", r.low_freq_factor, ")");
    }
    c.in_range("rope.original_max_positions", r.original_max_positions, 1, ModelSpecBounds::kMaxPositions);
  }
}

void check_experts(const ModelSpec& s, const SpecChecker& c) {
  c.in_range("num_experts", s.num_experts, 0, ModelSpecBounds::kMaxExperts);
  if (s.num_experts == 0) return;
  if (s.experts_per_token < 1 || s.experts_per_token > s.num_experts) {
    c.fail("experts_per_token", s.experts_per_token, "must be between 1 and ", c.name("num_experts"), " (",
           s.num_experts, ")");
  }
  if (!s.gated_mlp) c.fail("num_experts", s.num_experts, "requires a gated MLP (experts are SwiGLU)");
}

}  // namespace

void check_model_spec(const ModelSpec& s, std::string_view where, const SpecFieldNamer& namer) {
  const SpecChecker c(where, namer);
  using B = ModelSpecBounds;
  c.in_range("vocab_size", s.vocab_size, 1, B::kMaxVocab);
  c.in_range("hidden_size", s.hidden_size, 1, B::kMaxHidden);
  c.in_range("num_layers", s.num_layers, 1, B::kMaxLayers);
  c.in_range("num_heads", s.num_heads, 1, B::kMaxHeads);
  c.in_range("num_kv_heads", s.num_kv_heads, 1, s.num_heads);
  if (s.num_heads % s.num_kv_heads != 0) {
    c.fail("num_heads", s.num_heads, "must be a multiple of ", c.name("num_kv_heads"), " (", s.num_kv_heads, ")");
  }
  c.in_range("head_dim", s.head_dim, 1, B::kMaxHeadDim);
  c.in_range("intermediate_size", s.intermediate_size, 1, B::kMaxIntermediate);
  c.in_range("max_positions", s.max_positions, s.positions == PositionKind::learned ? 1 : 0, B::kMaxPositions);
  c.finite("norm_eps", s.norm_eps, false);
  if (s.parallel_two_norms && !s.parallel_block) {
    throw_error(where, ": ", c.name("parallel_two_norms"), " requires ", c.name("parallel_block"));
  }
  if (s.positions == PositionKind::rope) check_rope(s, c);
  if (s.positions == PositionKind::alibi && !std::isfinite(s.alibi_scale)) {
    throw_error(where, ": ", c.name("alibi_scale"), " must be finite");
  }
  c.in_range("sliding_window", s.sliding_window, 0, B::kMaxPositions);
  if (!s.sliding_layers.empty() && static_cast<int64_t>(s.sliding_layers.size()) != s.num_layers) {
    throw_error(where, ": ", c.name("sliding_layers"), " lists ", s.sliding_layers.size(), " layers, but ",
                c.name("num_layers"), " is ", s.num_layers);
  }
  check_experts(s, c);
}

}  // namespace kiln
