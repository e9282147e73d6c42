// The canonical decoder, once for every family and every backend: embedding,
// then per layer norm -> attention -> MLP (sequential or parallel), final norm
// and LM head. Tensor-parallel ranks run each layer's sharded projections and
// their partial outputs are summed (the all-reduce): either every rank in this
// graph, one after the other on one backend, or (with a Communicator) this
// graph is one rank on its own backend and the sums go through the
// communicator (runtime/tensor_parallel_graph.h runs such graphs at once).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/engine_reader.h"
#include "runtime/backend.h"
#include "runtime/communicator.h"
#include "runtime/kv_cache.h"
#include "runtime/model_weights.h"
#include "runtime/rope_table.h"
#include "runtime/step_executor.h"

namespace kiln::runtime {

class DecoderGraph : public StepExecutor {
 public:
  DecoderGraph(const engine::Engine& engine, Backend& backend);
  // One rank of the engine's tensor-parallel ranks, comm.rank(); only rank 0
  // computes the LM head, the logits and the tokens.
  DecoderGraph(const engine::Engine& engine, Backend& backend, Communicator& comm);

  const ModelSpec& spec() const override { return spec_; }
  // (Re)creates the paged KV cache with room for `num_blocks` blocks per layer.
  void reset_kv_cache(int64_t num_blocks) override;
  KvCache& kv_cache() override { return *kv_; }
  int64_t block_size() const override { return kBlockSize; }

  // Runs the step (the caller has reserved KV blocks for every sequence's new
  // length): each logit row's argmax and log-sum-exp, and the token
  // `choices[i]` picks for logit row i (sampled on the backend; no choices:
  // the argmax). Every logit comes back to the host only when `full_logits`
  // (StepExecutor::forward_logits for all of them).
  // A decode step (one new token per sequence, no experts) runs as a
  // recording the backend replays for later steps of the same batch size.
  void forward(const StepInput& step, StepOutput& out, bool full_logits,
               const std::vector<SampleRow>& choices) override;

 private:
  DecoderGraph(const engine::Engine& engine, Backend& backend, Communicator* comm);
  static constexpr int64_t kBlockSize = 16;
  // MoE steps of at most this many rows route on the backend (no host wait).
  static constexpr int64_t kDeviceRoutedRows = 8;
  float* scratch(std::size_t slot, int64_t floats);
  // The device work of a step, up to the logits summary.
  void run_layers(const StepInput& step);
  // Throws unless every row's token and position is inside the engine's tables.
  void check_step(const StepInput& step) const;
  // Each block adds its output to x (the residual stream).
  void attention_block(int64_t layer, const float* normed, const StepInput& step, float* x, bool fused_norm = false);
  void mlp_block(int64_t layer, const float* normed, int64_t rows, float* x, bool fused_norm = false);
  void moe_block(int64_t layer, const float* normed, int64_t rows, float* x);
  // Adds one dense MLP over `rows` to out, its shard on each rank given by `weights(rank)`;
  // with `run_if` (backend memory) its products run only where *run_if != 0.
  void dense_mlp(const std::function<const MlpWeights&(int rank)>& weights, const float* normed, int64_t rows,
                 float* out, const LayerWeights* norm_of = nullptr, const float* run_if = nullptr);
  const LayerWeights& layer_weights(int rank, int64_t layer) const;

  // out += partial: the ranks' partial sums added (all-reduced first when
  // this graph is one rank of several).
  void add_partial(float* partial, int64_t n, float* out);
  // The rank whose products this graph runs: every one, or the communicator's.
  bool runs_rank(int r) const { return comm_ == nullptr || comm_->rank() == r; }
  bool head_rank() const { return comm_ == nullptr || comm_->rank() == 0; }

  ModelSpec spec_;
  int tp_;
  Communicator* comm_ = nullptr;
  // One rank, sequential blocks, dense MLPs: each norm feeds exactly one projection.
  bool fuse_norms_ = false;
  Backend& backend_;
  ModelWeights weights_;
  RopeTable rope_;
  AttentionParams attn_;
  std::vector<float> alibi_slopes_;
  std::unique_ptr<KvCache> kv_;
  std::vector<std::unique_ptr<Buffer>> scratch_;
};

// ALiBi slopes for n heads (Press et al.; as in the Baichuan/BLOOM code).
std::vector<float> alibi_slopes(int64_t heads);

}  // namespace kiln::runtime
