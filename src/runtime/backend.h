// The device interface the decoder graph is written against. One graph, one
// implementation of each op per device (CTranslate2 style): the CPU backend
// here, a CUDA backend beside it later. Activations are fp32 buffers the
// backend allocates; host-side step metadata (positions, block tables) is
// passed as plain host data and copied by backends that need it on the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/model_spec.h"
#include "core/tensor.h"
#include "runtime/kv_cache.h"
#include "runtime/rope_table.h"
#include "runtime/sampler.h"
#include "runtime/uploaded_checksum.h"

namespace kiln::runtime {

// A weight as the backend's kernels read it.
struct Weight {
  DType dtype = DType::f32;
  Shape shape;
  const void* data = nullptr;
  std::shared_ptr<const void> keep_alive;
  // A quantized weight's (DType::f8e4m3) per-output-row fp32 scales, where the
  // backend keeps them; null for every other weight.
  const float* scale = nullptr;
  std::shared_ptr<const void> scale_keep_alive;
  int64_t rows() const { return shape.at(0); }
  int64_t cols() const { return shape.size() > 1 ? shape[1] : 1; }
  explicit operator bool() const { return data != nullptr; }
};

// Activation memory owned by a backend.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual float* data() = 0;
  virtual int64_t size() const = 0;  // floats
};

// One sequence's share of a step: `count` new tokens, rows [row, row + count)
// of the step's activations, at positions [start, start + count).
struct StepSequence {
  const SequenceKv* kv = nullptr;
  int64_t row = 0;
  int64_t start = 0;
  int64_t count = 0;
};

// One engine step: several sequences, each with one or more new tokens
// (prefill chunk or decode), flattened into rows.
struct StepInput {
  std::vector<int32_t> tokens;     // one per row
  std::vector<int32_t> positions;  // one per row
  std::vector<StepSequence> seqs;
  std::vector<int64_t> logit_rows;  // rows whose next-token logits are wanted
};

// How one logit row chooses its token when the argmax will not do.
struct SampleRow {
  const SamplingParams* params = nullptr;         // null: the argmax
  const std::vector<int32_t>* history = nullptr;  // tokens so far, for the repetition penalty (null: none)
  double uniform = 0;                             // a draw in [0, 1) from the sequence's generator
};

struct AttentionParams {
  int64_t num_heads = 0;  // per rank
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t sliding_window = 0;
  // The most positions a sequence may reach (the engine's max_input_len +
  // max_output_len), fixed for the engine's life: backends size per-step work
  // that must not depend on the step's lengths from it (the CUDA decode
  // attention's sequence partitions); 0: unknown.
  int64_t max_context = 0;
  const std::vector<float>* alibi_slopes = nullptr;  // per head of this rank, or null
  // Rotary embeddings, applied to the step's q and k heads before anything else
  // (the CUDA backend fuses them with the KV-cache write); null: none.
  const RopeSpec* rope = nullptr;
  const RopeTable* rope_table = nullptr;
};

// A norm applied inside a fused op (norm_linear's arguments).
struct NormArgs {
  NormKind kind = NormKind::rms;
  const Weight* weight = nullptr;
  const Weight* bias = nullptr;  // LayerNorm's, or null
  double eps = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Whether upload() copies the weights (to a device) rather than using the
  // mapped engine in place: loading then competes with the copy for the cores.
  virtual bool copies_weights() const { return false; }

  virtual Weight upload(const TensorView& host) = 0;
  // engine::ChunkChecksum's digest of each piece, hashed where the uploaded
  // weights are, after every upload before it: a backend that copies its
  // weights hashes its copy (on the device, at its memory's speed), which
  // verifies what was loaded without reading the file a second time. The
  // default hashes host memory (checksum_in_host_memory).
  virtual std::vector<uint64_t> checksum_uploaded(const std::vector<UploadedPiece>& pieces);
  virtual std::unique_ptr<Buffer> allocate(int64_t floats) = 0;
  // K and V storage for `config` (per rank `rank`).
  virtual void allocate_kv(const KvCacheConfig& config, int rank) = 0;
  // Bytes of one cached K or V value (the CPU keeps fp32; a GPU the engine's dtype).
  virtual int64_t kv_bytes_per_value() const { return 4; }
  // Bytes the KV cache may take when the process may use `fraction` of the
  // device's memory (weights and workspace already counted); nullopt where
  // the cache lives in host memory and a fixed budget applies.
  virtual std::optional<int64_t> kv_cache_budget(double /*fraction*/) const { return std::nullopt; }

  // Called once per step before its ops: backends that keep step metadata on
  // the device upload it here, once, and check the token ids. `step` stays
  // valid until the step's results have been read; embed, add_positions,
  // attention and gather_logit_rows read the step's rows from it.
  virtual void prepare_step(const StepInput& step) = 0;

  // Runs `ops` (one step's device work, reading step metadata only through
  // prepare_step) as a recording kept under `key`: a backend that can record
  // (CUDA graphs) replays the recording on later calls with the same key
  // instead of calling `ops`, so `ops` must issue the same work for the same
  // key. Others just call it.
  virtual void run_recorded(int64_t /*key*/, const std::function<void()>& ops) { ops(); }

  // out[r] = table[step.tokens[r]]
  virtual void embed(const Weight& table, float* out) = 0;
  // x[r] += table[step.positions[r]] (learned positions)
  virtual void add_positions(const Weight& table, float* x) = 0;
  virtual void norm(NormKind kind, const float* x, const Weight& weight, const Weight* bias, double eps, int64_t rows,
                    float* out) = 0;
  // out[rows, W.rows] = x[rows, W.cols] * W^T (+ bias); with `accumulate`, out += that
  // (residual connections and tensor-parallel partial sums need no separate add).
  virtual void linear(const float* x, int64_t rows, const Weight& w, const Weight* bias, float* out,
                      bool accumulate = false) = 0;
  // out = linear(norm(x)): the normalized rows go to `normed` (scratch of rows x
  // x-width floats), which a backend that fuses the two may leave unwritten.
  virtual void norm_linear(NormKind kind, const float* x, const Weight& norm_weight, const Weight* norm_bias,
                           double eps, int64_t rows, const Weight& w, const Weight* bias, float* normed, float* out) {
    norm(kind, x, norm_weight, norm_bias, eps, rows, normed);
    linear(normed, rows, w, bias, out);
  }
  // Applies p.rope (if any) to the q and k heads of the qkv rows ([rows][q; k; v]
  // per rank) in place, stores the step's K and V in the cache, and writes the
  // attention output [rows, heads*head_dim]. `positions`: one per row.
  virtual void attention(int rank, int64_t layer, float* qkv, const std::vector<int32_t>& positions,
                         const std::vector<StepSequence>& seqs, const KvCacheConfig& kv, const AttentionParams& p,
                         float* out) = 0;
  // out[r] = act(gate[r]) * up[r] from gate_up rows [gate; up] of width 2 * inner.
  virtual void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out) = 0;
  // A gated MLP: out (+)= linear(gated_activation(linear(x, gate_up)), down),
  // with `norm` (or null) applied to x first as norm_linear does. `normed`
  // (rows x x-width), `gate_up_out` (rows x gate_up.rows()) and `act_out`
  // (rows x gate_up.rows() / 2) are scratch for the intermediate values,
  // which a backend that fuses the steps (FP8 products taking operands their
  // producers quantized, scales applied inside the activation) may leave
  // unwritten or hold in another form.
  virtual void gated_mlp(Activation act, const float* x, int64_t rows, const NormArgs* norm, const Weight& gate_up,
                         const Weight& down, float* normed, float* gate_up_out, float* act_out, float* out,
                         bool accumulate) {
    if (norm) {
      norm_linear(norm->kind, x, *norm->weight, norm->bias, norm->eps, rows, gate_up, nullptr, normed, gate_up_out);
    } else {
      linear(x, rows, gate_up, nullptr, gate_up_out);
    }
    const int64_t inner = gate_up.rows() / 2;
    gated_activation(act, gate_up_out, rows, inner, act_out);
    linear(act_out, rows, down, nullptr, out, accumulate);
  }
  virtual void activation(Activation act, float* x, int64_t n) = 0;
  virtual void add(float* x, const float* y, int64_t n) = 0;  // x += y
  virtual void fill(float* x, float value, int64_t n) = 0;
  // out[rows[i]] += weights[i] * src[i] for rows of `cols` floats (MoE combine).
  virtual void scale_add_rows(const float* src, const std::vector<int64_t>& rows, const std::vector<float>& weights,
                              int64_t cols, float* out) = 0;
  virtual void add_bias(float* x, const Weight& bias, int64_t rows) = 0;

  // Mixture-of-experts routing without the host (decode steps): per row of
  // `rows` x `experts` router logits, softmax, the top_k experts (ties to the
  // lower index) and their weights, renormalized over the k when `normalize`.
  // Writes weights[rows][experts] (0 where a row does not use the expert) and
  // used[experts] (1 where some row does, else 0), both backend memory.
  virtual void route_experts(const float* router_logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize,
                             float* weights, float* used) = 0;
  // linear(), or nothing when *flag (backend memory) is 0: an expert no row uses.
  virtual void linear_if(const float* flag, const float* x, int64_t rows, const Weight& w, const Weight* bias,
                         float* out, bool accumulate = false) = 0;
  // x[r] += weights[r * stride] * src[r] for rows of `cols` floats whose weight is
  // not 0; nothing when *flag is 0 (an expert's output into the residual).
  virtual void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows,
                            int64_t cols, float* x) = 0;
  // out[i] = x[rows[i]] for rows of `cols` floats.
  virtual void gather_rows(const float* x, const std::vector<int64_t>& rows, int64_t cols, float* out) = 0;
  // out[i] = x[step.logit_rows[i]] for rows of `cols` floats.
  virtual void gather_logit_rows(const float* x, int64_t cols, float* out) = 0;
  // Waits for the step's work; its faults surface here.
  virtual void copy_to_host(const float* device, int64_t n, float* host) = 0;
  // Per row of `rows` x `vocab` logits: the first index of the largest logit,
  // that logit, and log(sum(exp(logits))). What greedy decoding and log
  // probabilities need, without moving every logit off the device: computed
  // here, brought to the host (after the step's work) by read_logits_summary.
  virtual void logits_summary(const float* logits, int64_t rows, int64_t vocab) = 0;
  virtual void read_logits_summary(int32_t* argmax, float* max_logit, float* log_sum_exp) = 0;
  // One token per row of `rows` x `vocab` logits, chosen as `choices[r]` says
  // (temperature, top-k, top-p, repetition penalty: sample_token's rules),
  // and the token's logit before any penalty. This default brings the logits
  // to the host and runs sample_token there.
  virtual void sample(const float* logits, int64_t vocab, const std::vector<SampleRow>& choices, int32_t* tokens,
                      float* chosen_logits);
};

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace kiln::runtime
