#include "models/decoder_layout.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kiln::models {
namespace {

using checkpoint::WeightSet;
namespace tn = tensor_names;

// Elements per row of a row-major tensor (1 for vectors).
int64_t row_elems(const Shape& shape) {
  int64_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

// Grouped storage [kv][q_0..q_{g-1}, k, v][head_dim](cols) read as [all q; all k; all v].
std::vector<RowPiece> ungrouped_qkv_rows(int64_t kv_heads, int64_t group, int64_t head_dim) {
  std::vector<RowPiece> rows;
  const int64_t block = (group + 2) * head_dim;
  for (int64_t h = 0; h < kv_heads; ++h) rows.push_back({0, h * block, group * head_dim});
  for (int64_t h = 0; h < kv_heads; ++h) rows.push_back({0, h * block + group * head_dim, head_dim});
  for (int64_t h = 0; h < kv_heads; ++h) rows.push_back({0, h * block + (group + 1) * head_dim, head_dim});
  return rows;
}

FloatTensor normalize_rows(FloatTensor t) {
  const int64_t cols = t.shape.at(1);
  for (int64_t r = 0; r < t.shape[0]; ++r) {
    float* row = t.data() + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += double(row[c]) * row[c];
    const double scale = 1.0 / std::max(std::sqrt(sum), 1e-12);  // as torch.nn.functional.normalize
    for (int64_t c = 0; c < cols; ++c) row[c] = static_cast<float>(row[c] * scale);
  }
  return t;
}

FloatTensor transpose(const FloatTensor& t) {
  const int64_t rows = t.shape.at(0), cols = t.shape.at(1);
  FloatTensor out({cols, rows});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out.values[c * rows + r] = t.values[r * cols + c];
  }
  return out;
}

// One checkpoint tensor a canonical tensor is made from, with its canonical
// (row-major [out, in]) shape; `transposed` when stored [in, out] (Conv1D).
struct Source {
  std::string name;
  Shape shape;
  bool transposed = false;
};

// Builds canonical tensors from checkpoint tensors: reads each source (checking
// its shape, undoing a transposed storage), takes their rows in order (all of
// each source, concatenated, unless `pieces` says which), then applies `finish`
// (normalization) if given.
class TensorListBuilder {
 public:
  explicit TensorListBuilder(const WeightSet& weights) : weights_(weights) {}

  void add(std::string name, Layout layout, std::vector<Source> sources,
           std::function<FloatTensor(FloatTensor)> finish = nullptr, std::vector<RowPiece> pieces = {}) {
    Shape shape = sources.at(0).shape;
    for (std::size_t i = 1; i < sources.size(); ++i) shape[0] += sources[i].shape[0];
    CanonicalTensor t{std::move(name), shape, layout, {}, {}, nullptr, {}};
    std::vector<bool> flip;
    for (const auto& s : sources) {
      flip.push_back(s.transposed && s.shape.size() == 2);
      t.sources.push_back(s.name);
      t.source_shapes.push_back(flip.back() ? Shape{s.shape[1], s.shape[0]} : s.shape);
    }
    if (pieces.empty()) {
      for (std::size_t i = 0; i < sources.size(); ++i) {
        pieces.push_back({i, 0, sources[i].shape.empty() ? 1 : sources[i].shape[0]});
      }
    }
    const bool any_flip = std::find(flip.begin(), flip.end(), true) != flip.end();
    if (!any_flip && !finish) t.rows = pieces;
    t.produce = [&w = weights_, names = t.sources, stored = t.source_shapes, canonical = std::move(sources), flip,
                 shape, pieces = std::move(pieces), finish] {
      std::vector<TensorView> views;
      std::vector<FloatTensor> flipped(names.size());
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (flip[i]) {
          flipped[i] = transpose(load_checked(w, names[i], stored[i]));
          views.push_back(TensorView{DType::f32, canonical[i].shape, flipped[i].data(), nullptr});
        } else {
          views.push_back(check_source(w, names[i], stored[i]));
        }
      }
      FloatTensor whole(shape);
      const int64_t cols = row_elems(shape);
      float* dst = whole.data();
      for (const RowPiece& p : pieces) {
        const TensorView& v = views.at(p.source);
        const auto* src = static_cast<const std::byte*>(v.data) + p.first_row * cols * dtype_size(v.dtype);
        convert_to_f32(v.dtype, src, dst, static_cast<std::size_t>(p.rows * cols));
        dst += p.rows * cols;
      }
      return finish ? finish(std::move(whole)) : whole;
    };
    out_.push_back(std::move(t));
  }

  // A norm's weight, and its bias when the spec's norms have one.
  void norm(const std::string& canonical_weight, const std::string& canonical_bias, const std::string& source,
            int64_t size, bool with_bias) {
    add(canonical_weight, Layout::replicated, {{source + ".weight", {size}}});
    if (with_bias) add(canonical_bias, Layout::replicated, {{source + ".bias", {size}}});
  }

  std::vector<CanonicalTensor> take() { return std::move(out_); }

 private:
  const WeightSet& weights_;
  std::vector<CanonicalTensor> out_;
};

}  // namespace

std::vector<CanonicalTensor> decoder_tensors(const ModelSpec& s, const WeightSet& w, const DecoderLayout& l) {
  const int64_t H = s.hidden_size, I = s.intermediate_size;
  TensorListBuilder b(w);
  // Attention and MLP projections, which some families store transposed.
  auto proj = [&](std::string name, Shape shape) { return Source{std::move(name), std::move(shape), l.transposed}; };
  b.add(tn::kEmbed, Layout::replicated, {{l.embed + ".weight", {s.vocab_size, H}}});
  if (s.positions == PositionKind::learned) {
    b.add(tn::kPosEmbed, Layout::replicated, {{l.pos_embed + ".weight", {s.max_positions, H}}});
  }
  for (int64_t i = 0; i < s.num_layers; ++i) {
    const std::string p = l.layer_prefix + std::to_string(i) + ".";
    auto at = [&](const char* suffix) { return tn::layer(i, suffix); };
    b.norm(at(tn::kAttnNormWeight), at(tn::kAttnNormBias), p + l.attn_norm, H, s.norm_bias);
    if (!s.parallel_block || s.parallel_two_norms) {
      b.norm(at(tn::kMlpNormWeight), at(tn::kMlpNormBias), p + l.mlp_norm, H, s.norm_bias);
    }

    // q, k and v, fused into the canonical [q; k; v].
    for (const char* part : {"weight", "bias"}) {
      if (std::string(part) == "bias" && !s.qkv_bias) continue;
      const bool matrix = std::string(part) == "weight";
      auto shape = [&](int64_t rows) { return matrix ? Shape{rows, H} : Shape{rows}; };
      const std::string suffix = std::string(".") + part;
      if (l.qkv_storage == QkvStorage::separate) {
        b.add(at(matrix ? tn::kQkvWeight : tn::kQkvBias), Layout::qkv,
              {proj(p + l.q + suffix, shape(s.q_size())), proj(p + l.k + suffix, shape(s.kv_size())),
               proj(p + l.v + suffix, shape(s.kv_size()))});
      } else {
        std::vector<RowPiece> regroup;
        if (l.qkv_storage == QkvStorage::fused_grouped) {
          regroup = ungrouped_qkv_rows(s.num_kv_heads, s.num_heads / s.num_kv_heads, s.head_dim);
        }
        b.add(at(matrix ? tn::kQkvWeight : tn::kQkvBias), Layout::qkv,
              {proj(p + l.qkv_fused + suffix, shape(s.qkv_rows()))}, nullptr, std::move(regroup));
      }
    }
    b.add(at(tn::kOutWeight), Layout::row, {proj(p + l.o + ".weight", {H, s.q_size()})});
    if (s.out_bias) b.add(at(tn::kOutBias), Layout::replicated, {{p + l.o + ".bias", {H}}});

    if (s.num_experts > 0) {
      b.add(at(tn::kRouterWeight), Layout::replicated, {{p + l.router + ".weight", {s.num_experts, H}}});
      for (int64_t e = 0; e < s.num_experts; ++e) {
        const std::string x = p + l.experts + std::to_string(e) + ".";
        b.add(tn::expert(i, e, tn::kExpertGateUpWeight), Layout::gate_up,
              {proj(x + l.expert_gate + ".weight", {I, H}), proj(x + l.expert_up + ".weight", {I, H})});
        b.add(tn::expert(i, e, tn::kExpertDownWeight), Layout::row, {proj(x + l.expert_down + ".weight", {H, I})});
      }
      continue;
    }
    if (s.gated_mlp) {
      if (!l.gate_up_fused.empty()) {
        b.add(at(tn::kGateUpWeight), Layout::gate_up, {proj(p + l.gate_up_fused + ".weight", {2 * I, H})});
      } else {
        b.add(at(tn::kGateUpWeight), Layout::gate_up,
              {proj(p + l.gate + ".weight", {I, H}), proj(p + l.up + ".weight", {I, H})});
      }
    } else {
      b.add(at(tn::kUpWeight), Layout::column, {proj(p + l.up + ".weight", {I, H})});
      if (s.mlp_bias) b.add(at(tn::kUpBias), Layout::column, {{p + l.up + ".bias", {I}}});
    }
    b.add(at(tn::kDownWeight), Layout::row, {proj(p + l.down + ".weight", {H, I})});
    if (s.mlp_bias) b.add(at(tn::kDownBias), Layout::replicated, {{p + l.down + ".bias", {H}}});
  }
  b.norm(tn::kFinalNormWeight, tn::kFinalNormBias, l.final_norm, H, s.norm_bias);
  if (!s.tied_embeddings) {
    std::function<FloatTensor(FloatTensor)> finish;
    if (l.normalize_lm_head_rows) finish = normalize_rows;
    b.add(tn::kLmHead, Layout::replicated, {{l.lm_head + ".weight", {s.vocab_size, H}}}, finish);
  }
  if (s.lm_head_bias) b.add(tn::kLmHeadBias, Layout::replicated, {{l.lm_head + ".bias", {s.vocab_size}}});
  return b.take();
}

}  // namespace kiln::models
