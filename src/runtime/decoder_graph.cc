#include "runtime/decoder_graph.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/expert_routing.h"

namespace kiln::runtime {

std::vector<float> alibi_slopes(int64_t heads) {
  auto power_of_two = [](int64_t n) {
    const double start = std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(n)) - 3)));
    std::vector<float> s;
    for (int64_t i = 0; i < n; ++i) s.push_back(static_cast<float>(start * std::pow(start, static_cast<double>(i))));
    return s;
  };
  const int64_t closest = int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(heads))));
  std::vector<float> slopes = power_of_two(closest);
  if (closest != heads) {
    const std::vector<float> extra = alibi_slopes(2 * closest);
    for (int64_t i = 0; i < heads - closest; ++i) slopes.push_back(extra[static_cast<std::size_t>(2 * i)]);
  }
  return slopes;
}

DecoderGraph::DecoderGraph(const engine::Engine& engine, Backend& backend) : DecoderGraph(engine, backend, nullptr) {}

DecoderGraph::DecoderGraph(const engine::Engine& engine, Backend& backend, Communicator& comm)
    : DecoderGraph(engine, backend, &comm) {}

DecoderGraph::DecoderGraph(const engine::Engine& engine, Backend& backend, Communicator* comm)
    : spec_(engine.manifest().spec), tp_(engine.manifest().tensor_parallel), comm_(comm), backend_(backend) {
  if (comm_ && comm_->size() != tp_) {
    throw_error("internal: a communicator of ", comm_->size(), " ranks for an engine of ", tp_);
  }
  // Every rank's graph sees the whole engine; rank 0 verifies it for all of them.
  weights_ = ModelWeights::load(engine, backend, head_rank());
  const auto& limits = engine.manifest().limits;
  const int64_t context = limits.max_input_len + limits.max_output_len;
  if (spec_.positions == PositionKind::rope) rope_ = RopeTable::build(spec_.rope, context);
  attn_.num_heads = spec_.num_heads / tp_;
  attn_.num_kv_heads = spec_.kv_heads_per_rank(tp_);
  attn_.head_dim = spec_.head_dim;
  attn_.max_context = context;
  fuse_norms_ = tp_ == 1 && !spec_.parallel_block && spec_.num_experts == 0;
  if (spec_.positions == PositionKind::alibi) {
    alibi_slopes_ = alibi_slopes(spec_.num_heads);
    for (float& slope : alibi_slopes_) slope = static_cast<float>(slope * spec_.alibi_scale);
  }
}

void DecoderGraph::add_partial(float* partial, int64_t n, float* out) {
  if (comm_) comm_->all_reduce_sum(partial, n);
  backend_.add(out, partial, n);
}

void DecoderGraph::reset_kv_cache(int64_t num_blocks) {
  KvCacheConfig c;
  c.num_layers = spec_.num_layers;
  c.kv_heads = attn_.num_kv_heads;
  c.head_dim = spec_.head_dim;
  c.block_size = kBlockSize;
  c.num_blocks = num_blocks;
  kv_ = std::make_unique<KvCache>(c);
  for (int r = 0; r < tp_; ++r) {
    if (runs_rank(r)) backend_.allocate_kv(c, r);
  }
}

float* DecoderGraph::scratch(std::size_t slot, int64_t floats) {
  if (scratch_.size() <= slot) scratch_.resize(slot + 1);
  if (!scratch_[slot] || scratch_[slot]->size() < floats) scratch_[slot] = backend_.allocate(floats);
  return scratch_[slot]->data();
}

// Scratch slots, one per live activation.
enum Slot : std::size_t {
  kX,
  kNormed,
  kQkv,
  kAttn,
  kGateUp,
  kAct,
  kNormed2,
  kLast,
  kLogits,
  kPartial,
  kRouter,
  kExpertIn,
  kExpertOut,
  kRouteWeights,
  kRouteUsed
};

// x += attention(normed): every rank's output projection accumulates into x
// (the all-reduce of tensor parallelism, and the residual, in one pass).
// With `fused_norm` the input is the raw residual x and the attention norm is
// applied inside the qkv projection (Backend::norm_linear).
void DecoderGraph::attention_block(int64_t layer, const float* normed, const StepInput& step, float* x,
                                   bool fused_norm) {
  const auto rows = static_cast<int64_t>(step.tokens.size());
  for (int r = 0; r < tp_; ++r) {
    if (!runs_rank(r)) continue;
    const LayerWeights& w = weights_.ranks[static_cast<std::size_t>(r)].layers[static_cast<std::size_t>(layer)];
    float* qkv = scratch(kQkv, rows * w.qkv.rows());
    const Weight* qkv_bias = w.qkv_bias ? &w.qkv_bias : nullptr;
    if (fused_norm) {
      backend_.norm_linear(spec_.norm, normed, w.attn_norm, w.attn_norm_bias ? &w.attn_norm_bias : nullptr,
                           spec_.norm_eps, rows, w.qkv, qkv_bias, scratch(kNormed, rows * spec_.hidden_size), qkv);
    } else {
      backend_.linear(normed, rows, w.qkv, qkv_bias, qkv);
    }
    AttentionParams p = attn_;
    p.sliding_window = spec_.window_of(layer);
    if (spec_.positions == PositionKind::rope) {
      p.rope = &spec_.rope;
      p.rope_table = &rope_;
    }
    std::vector<float> slopes;
    if (!alibi_slopes_.empty()) {
      slopes.assign(alibi_slopes_.begin() + r * attn_.num_heads, alibi_slopes_.begin() + (r + 1) * attn_.num_heads);
      p.alibi_slopes = &slopes;
    }
    float* attn = scratch(kAttn, rows * attn_.num_heads * attn_.head_dim);
    backend_.attention(r, layer, qkv, step.positions, step.seqs, kv_->config(), p, attn);
    if (comm_) {
      float* partial = scratch(kPartial, rows * spec_.hidden_size);
      backend_.linear(attn, rows, w.out, nullptr, partial);
      add_partial(partial, rows * spec_.hidden_size, x);
    } else {
      backend_.linear(attn, rows, w.out, nullptr, x, /*accumulate=*/true);
    }
  }
  const LayerWeights& w0 = weights_.ranks[0].layers[static_cast<std::size_t>(layer)];
  if (w0.out_bias) backend_.add_bias(x, w0.out_bias, rows);
}

void DecoderGraph::mlp_block(int64_t layer, const float* normed, int64_t rows, float* x, bool fused_norm) {
  if (spec_.num_experts > 0) return moe_block(layer, normed, rows, x);
  dense_mlp([&](int rank) -> const MlpWeights& { return layer_weights(rank, layer).mlp; }, normed, rows, x,
            fused_norm ? &layer_weights(0, layer) : nullptr);
}

const LayerWeights& DecoderGraph::layer_weights(int rank, int64_t layer) const {
  return weights_.ranks[static_cast<std::size_t>(rank)].layers[static_cast<std::size_t>(layer)];
}

// out += mlp(normed), summed over the ranks' shards.
// `norm_of` (one rank only): the input is the raw residual and that layer's MLP
// norm is applied inside the first projection (Backend::norm_linear). A gated
// MLP not under `run_if` is one Backend::gated_mlp call.
void DecoderGraph::dense_mlp(const std::function<const MlpWeights&(int rank)>& weights, const float* normed,
                             int64_t rows, float* out, const LayerWeights* norm_of, const float* run_if) {
  NormArgs norm;
  if (norm_of) {
    norm = {spec_.norm, &norm_of->mlp_norm, norm_of->mlp_norm_bias ? &norm_of->mlp_norm_bias : nullptr, spec_.norm_eps};
  }
  auto first_projection = [&](const Weight& w, const Weight* bias, float* result) {
    if (run_if) {
      backend_.linear_if(run_if, normed, rows, w, bias, result);
    } else if (norm_of) {
      backend_.norm_linear(norm.kind, normed, *norm.weight, norm.bias, norm.eps, rows, w, bias,
                           scratch(kNormed, rows * spec_.hidden_size), result);
    } else {
      backend_.linear(normed, rows, w, bias, result);
    }
  };
  for (int r = 0; r < tp_; ++r) {
    if (!runs_rank(r)) continue;
    const MlpWeights& w = weights(r);
    float* act;
    if (spec_.gated_mlp) {
      const int64_t inner = w.gate_up.rows() / 2;
      float* gate_up = scratch(kGateUp, rows * 2 * inner);
      act = scratch(kAct, rows * inner);
      if (!run_if) {
        // The whole MLP in one call (the backend may fuse its steps).
        float* normed_out = norm_of ? scratch(kNormed, rows * spec_.hidden_size) : nullptr;
        const int64_t n = rows * spec_.hidden_size;
        float* target = comm_ ? scratch(kPartial, n) : out;
        backend_.gated_mlp(spec_.activation, normed, rows, norm_of ? &norm : nullptr, w.gate_up, w.down, normed_out,
                           gate_up, act, target, /*accumulate=*/comm_ == nullptr);
        if (comm_) add_partial(target, n, out);
        continue;
      }
      first_projection(w.gate_up, nullptr, gate_up);
      backend_.gated_activation(spec_.activation, gate_up, rows, inner, act);
    } else {
      act = scratch(kAct, rows * w.up.rows());
      first_projection(w.up, w.up_bias ? &w.up_bias : nullptr, act);
      backend_.activation(spec_.activation, act, rows * w.up.rows());
    }
    if (comm_) {
      // Every rank takes part in the sum, its expert used or not (a zero partial then).
      const int64_t n = rows * spec_.hidden_size;
      float* partial = scratch(kPartial, n);
      if (run_if) {
        backend_.fill(partial, 0.f, n);
        backend_.linear_if(run_if, act, rows, w.down, nullptr, partial, /*accumulate=*/true);
      } else {
        backend_.linear(act, rows, w.down, nullptr, partial);
      }
      add_partial(partial, n, out);
    } else if (run_if) {
      backend_.linear_if(run_if, act, rows, w.down, nullptr, out, /*accumulate=*/true);
    } else {
      backend_.linear(act, rows, w.down, nullptr, out, /*accumulate=*/true);
    }
  }
  if (weights(0).down_bias) backend_.add_bias(out, weights(0).down_bias, rows);
}

// Mixtral-style routing (runtime/expert_routing.h): each token's top k
// experts, each expert run on the rows routed to it and its output added to x
// with the routing weight. A few rows (decode) are routed on the backend: every
// expert some row uses runs on all of them (the same weight bytes; a row whose
// weight is 0 adds nothing), and unused experts are skipped there, so the step
// never waits for the host. Larger steps route on the host and gather rows.
void DecoderGraph::moe_block(int64_t layer, const float* normed, int64_t rows, float* x) {
  const int64_t H = spec_.hidden_size, E = spec_.num_experts, K = spec_.experts_per_token;
  float* router = scratch(kRouter, rows * E);
  backend_.linear(normed, rows, layer_weights(0, layer).router, nullptr, router);
  if (rows <= kDeviceRoutedRows) {
    float* weights = scratch(kRouteWeights, rows * E);
    float* used = scratch(kRouteUsed, E);
    backend_.route_experts(router, rows, E, K, spec_.moe_normalize_topk, weights, used);
    float* expert_out = scratch(kExpertOut, rows * H);
    for (int64_t e = 0; e < E; ++e) {
      backend_.fill(expert_out, 0.f, rows * H);
      dense_mlp([&](int rank) -> const MlpWeights& { return layer_weights(rank, layer).experts[e]; }, normed, rows,
                expert_out, nullptr, used + e);
      backend_.scale_add_if(used + e, expert_out, weights + e, E, rows, H, x);
    }
    return;
  }
  std::vector<float> logits(static_cast<std::size_t>(rows * E));
  backend_.copy_to_host(router, rows * E, logits.data());
  std::vector<std::vector<int64_t>> routed_rows(static_cast<std::size_t>(E));
  std::vector<std::vector<float>> routed_weights(static_cast<std::size_t>(E));
  for (int64_t r = 0; r < rows; ++r) {
    for (const ExpertChoice& c : choose_experts(logits.data() + r * E, E, K, spec_.moe_normalize_topk)) {
      routed_rows[c.expert].push_back(r);
      routed_weights[c.expert].push_back(c.weight);
    }
  }
  for (int64_t e = 0; e < E; ++e) {
    const auto n = static_cast<int64_t>(routed_rows[e].size());
    if (n == 0) continue;
    float* in = scratch(kExpertIn, n * H);
    backend_.gather_rows(normed, routed_rows[e], H, in);
    float* expert_out = scratch(kExpertOut, n * H);
    backend_.fill(expert_out, 0.f, n * H);
    dense_mlp([&](int rank) -> const MlpWeights& { return layer_weights(rank, layer).experts[e]; }, in, n, expert_out);
    backend_.scale_add_rows(expert_out, routed_rows[e], routed_weights[e], H, x);
  }
}

void DecoderGraph::check_step(const StepInput& step) const {
  int64_t limit = std::numeric_limits<int64_t>::max();
  if (spec_.positions == PositionKind::rope) limit = rope_.positions;
  if (weights_.pos_embed) limit = std::min(limit, weights_.pos_embed.rows());
  for (const int32_t p : step.positions) {
    if (p < 0 || p >= limit) throw_error("position ", p, " is outside the engine's position tables (", limit, ")");
  }
  for (const int32_t t : step.tokens) {
    if (t < 0 || t >= weights_.embed.rows()) {
      throw_error("token id ", t, " is outside the vocabulary (", weights_.embed.rows(), ")");
    }
  }
}

void DecoderGraph::forward(const StepInput& step, StepOutput& result, bool full_logits,
                           const std::vector<SampleRow>& choices) {
  const auto rows = static_cast<int64_t>(step.tokens.size());
  const auto n = static_cast<int64_t>(step.logit_rows.size());
  if (rows == 0) throw_error("internal: empty step");
  if (!choices.empty() && static_cast<int64_t>(choices.size()) != n) {
    throw_error("internal: ", choices.size(), " sampling choices for ", n, " logit rows");
  }
  check_step(step);
  backend_.prepare_step(step);
  // Decode steps repeat their shape from step to step: the backend may record
  // them once per batch size. Experts route on the host above a few rows, so
  // larger MoE steps cannot.
  bool decode = (spec_.num_experts == 0 || rows <= kDeviceRoutedRows) && n == rows;
  for (const auto& s : step.seqs) decode = decode && s.count == 1;
  for (int64_t i = 0; decode && i < n; ++i) decode = step.logit_rows[static_cast<std::size_t>(i)] == i;
  if (decode) {
    backend_.run_recorded(rows, [&] { run_layers(step); });
  } else {
    run_layers(step);
  }
  if (!head_rank()) {
    // The other ranks' part ends with the last layer: rank 0 has the logits.
    float probe = 0.f;
    backend_.copy_to_host(scratch(kX, 1), 1, &probe);  // waits for the step's work, surfacing its faults
    result = StepOutput{};
    return;
  }
  result.argmax.resize(static_cast<std::size_t>(n));
  result.max_logit.resize(static_cast<std::size_t>(n));
  result.log_sum_exp.resize(static_cast<std::size_t>(n));
  backend_.read_logits_summary(result.argmax.data(), result.max_logit.data(), result.log_sum_exp.data());
  float* logits = scratch(kLogits, n * spec_.vocab_size);
  result.tokens = result.argmax;
  result.chosen_logit = result.max_logit;
  bool sampled = false;
  for (const auto& c : choices) sampled = sampled || c.params;
  if (sampled) {
    backend_.sample(logits, spec_.vocab_size, choices, result.tokens.data(), result.chosen_logit.data());
  }
  if (full_logits) {
    result.logits.resize(static_cast<std::size_t>(n * spec_.vocab_size));
    backend_.copy_to_host(logits, n * spec_.vocab_size, result.logits.data());
  } else {
    result.logits.clear();
  }
}

void DecoderGraph::run_layers(const StepInput& step) {
  const auto rows = static_cast<int64_t>(step.tokens.size());
  const int64_t H = spec_.hidden_size;
  float* x = scratch(kX, rows * H);
  float* normed = scratch(kNormed, rows * H);
  backend_.embed(weights_.embed, x);
  if (weights_.pos_embed) backend_.add_positions(weights_.pos_embed, x);

  for (int64_t i = 0; i < spec_.num_layers; ++i) {
    const LayerWeights& w = weights_.ranks[0].layers[static_cast<std::size_t>(i)];
    const Weight* attn_norm_bias = w.attn_norm_bias ? &w.attn_norm_bias : nullptr;
    const Weight* mlp_norm_bias = w.mlp_norm_bias ? &w.mlp_norm_bias : nullptr;
    if (spec_.parallel_block) {
      backend_.norm(spec_.norm, x, w.attn_norm, attn_norm_bias, spec_.norm_eps, rows, normed);
      // x += attn(norm1(x)) + mlp(norm1(x) or norm2(x)); both norms read x before it changes.
      const float* mlp_in = normed;
      if (spec_.parallel_two_norms) {
        float* normed2 = scratch(kNormed2, rows * H);
        backend_.norm(spec_.norm, x, w.mlp_norm, mlp_norm_bias, spec_.norm_eps, rows, normed2);
        mlp_in = normed2;
      }
      attention_block(i, normed, step, x);
      mlp_block(i, mlp_in, rows, x);
    } else if (fuse_norms_) {
      // Each norm feeds one projection: the backend may fuse them (decode's RMSNorm + gemv).
      attention_block(i, x, step, x, /*fused_norm=*/true);
      mlp_block(i, x, rows, x, /*fused_norm=*/true);
    } else {
      backend_.norm(spec_.norm, x, w.attn_norm, attn_norm_bias, spec_.norm_eps, rows, normed);
      attention_block(i, normed, step, x);
      backend_.norm(spec_.norm, x, w.mlp_norm, mlp_norm_bias, spec_.norm_eps, rows, normed);
      mlp_block(i, normed, rows, x);
    }
  }

  if (!head_rank()) return;
  // One rank of several: the others are done with the step, so the LM head
  // (replicated, rank 0's alone) takes the process's threads, not the rank's share.
  std::optional<CurrentPool> all_threads;
  if (comm_) all_threads.emplace(ThreadPool::global());
  const auto n = static_cast<int64_t>(step.logit_rows.size());
  float* last = scratch(kLast, n * H);
  backend_.gather_logit_rows(x, H, last);
  float* last_normed = scratch(kNormed2, n * H);
  backend_.norm(spec_.norm, last, weights_.final_norm, weights_.final_norm_bias ? &weights_.final_norm_bias : nullptr,
                spec_.norm_eps, n, last_normed);
  float* out = scratch(kLogits, n * spec_.vocab_size);
  backend_.linear(last_normed, n, weights_.lm_head, weights_.lm_head_bias ? &weights_.lm_head_bias : nullptr, out);
  backend_.logits_summary(out, n, spec_.vocab_size);
}

}  // namespace kiln::runtime
