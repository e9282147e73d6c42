// Launchers for the CUDA backend's kernels, callable from plain C++. Every
// kernel reads and writes fp32 activations; weights are fp32, fp16 or bf16
// as the engine stores them; the KV cache is in the engine's dtype. All run
// on the backend's one stream, in order.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/model_spec.h"

namespace kiln::runtime::cuda {

// out[r] = table[ids[r]] for `rows` device ids.
void embed(const void* table, DType dtype, int64_t cols, const int32_t* ids, int64_t rows, float* out,
           cudaStream_t stream);
// x[r] += table[positions[r]].
void add_rows(const void* table, DType dtype, int64_t cols, const int32_t* positions, int64_t rows, float* x,
              cudaStream_t stream);
void rms_norm(const float* x, const float* w, float eps, int64_t rows, int64_t cols, float* out, cudaStream_t stream);
void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t rows, int64_t cols, float* out,
                cudaStream_t stream);

// The most activation rows gemv takes; larger products go to cuBLAS.
constexpr int64_t kGemvMaxRows = 8;
// out[r, n] (+)= sum_k x[r, k] * w[n, k] (+ bias[n]) for rows <= kGemvMaxRows: decode's
// weight-bandwidth-bound product, one warp per output feature, 16-byte loads.
// `accumulate` adds to out (the residual) instead of overwriting it.
// An E4M3 weight (DType::f8e4m3) takes `scale`, its per-output-feature scales.
void gemv(const float* x, int64_t rows, const void* w, DType dtype, int64_t in, int64_t out_features, const float* bias,
          float* out, bool accumulate, cudaStream_t stream, const float* run_if = nullptr,
          const float* scale = nullptr);
// gemv of RMSNorm(x) (weight norm_weight, eps) without writing the normalized
// rows: decode's norm costs no launch and no pass of its own.
bool rms_norm_gemv_supported(int64_t rows, int64_t in);
void rms_norm_gemv(const float* x, int64_t rows, const float* norm_weight, float eps, const void* w, DType dtype,
                   int64_t in, int64_t out_features, const float* bias, float* out, cudaStream_t stream,
                   const float* scale = nullptr);
// out[r][c] = e4m3(w[r][c]) x scale[r], rounded to fp16 or bf16: a quantized
// weight as the 16-bit GEMMs take it, where no E4M3 GEMM runs the shape.
void dequantize_e4m3(const void* w, const float* scale, int64_t rows, int64_t cols, DType dtype, void* out,
                     cudaStream_t stream);
// Dynamic per-row quantization of an FP8 product's activations:
// scales[r] = max_c |x[r][c]| / 448 (1 for a row of zeros) and
// q[r][c] = e4m3(x[r][c] / scales[r]) (fp32 division, then round to nearest
// even, saturating). x 16-byte aligned when cols % 4 == 0.
void quantize_rows_e4m3(const float* x, int64_t rows, int64_t cols, void* q, float* scales, cudaStream_t stream);
// The same quantization fused into the op that produces the values, for
// rows of cols % 4 == 0 values (fused_quantize_supported): RMSNorm's output
// (rms_norm's arithmetic), and act(gate) * up of gate_up rows [gate | up]
// (with x_scale and w_scale: of an unscaled E4M3 product, scaled first as
// apply_e4m3_scales would). q's rows 4-byte aligned, x's 16-byte.
bool fused_quantize_supported(int64_t cols);
void rms_norm_quantize_e4m3(const float* x, const float* w, float eps, int64_t rows, int64_t cols, void* q,
                            float* scales, cudaStream_t stream);
void gated_activation_quantize_e4m3(Activation act, const float* gate_up, int64_t rows, int64_t inner, void* q,
                                    float* scales, cudaStream_t stream, const float* x_scale = nullptr,
                                    const float* w_scale = nullptr);
// Decode's FP8 product on tensor cores (sm_89+): out[r, n] (+)= x_scale[r] x
// w_scale[n] x sum_k q[r, k] w[n, k] (+ bias[n]) for 1 to kGemvMaxRows rows of
// E4M3 activations q (quantize_rows_e4m3's) and E4M3 weights, in % 16 == 0,
// 16-byte aligned rows. Skipped when run_if points at 0 (an unused expert).
bool gemv_e4m3_supported(int64_t rows, int64_t in);
// `depth`: chunks of 64 columns each warp loads at once, 8 (the default) or 4;
// `streaming` (the default): weight loads that bypass L1, with 256-byte L2
// fetches (H200, one launch of 8 in a row: 2.9 vs 2.0 TB/s for Llama-3-8B's
// down projection, 3.2 vs 2.9 for gate_up); both switchable for
// bench/cuda_gemv_check's comparison.
void gemv_e4m3(const void* q, const float* x_scale, int64_t rows, const void* w, const float* w_scale, int64_t in,
               int64_t out_features, const float* bias, float* out, bool accumulate, cudaStream_t stream,
               const float* run_if = nullptr, int depth = 8, bool streaming = true);
// out[r][c] = raw[r][c] x x_scale[r] x w_scale[c], or out[r][c] += that with
// `accumulate`: the per-row and per-feature scales applied after an E4M3
// product that cuBLASLt could not scale by vectors itself. raw may be out
// (not with accumulate); all fp32, 16-byte aligned.
void apply_e4m3_scales(const float* raw, const float* x_scale, const float* w_scale, int64_t rows, int64_t cols,
                       float* out, bool accumulate, cudaStream_t stream);
// fp32 -> fp16 / bf16, the operand cuBLAS's tensor-core products take.
void convert_from_f32(const float* x, int64_t n, DType dtype, void* out, cudaStream_t stream);
void add_bias(float* x, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// Where each step row's token lives: its position, and its sequence's block table.
struct StepRows {
  const int32_t* positions = nullptr;     // [rows]
  const int32_t* table_offset = nullptr;  // [rows] index of the row's block table in block_tables
  const int32_t* block_tables = nullptr;
  int block_size = 16;
};

constexpr int kMaxAlibiHeads = 128;
struct AttentionShape {
  int rows = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int sliding_window = 0;  // 0: unlimited
  // Decode attention: the most positions any row may reach (every position
  // < max_context). It, not the rows' lengths, fixes the sequence partitions
  // of a launch, so one recorded launch serves every step.
  int max_context = 0;
  bool alibi = false;
  float alibi_slopes[kMaxAlibiHeads] = {};
};

// Rotary tables on the device ([positions][half]); half == 0: no rotary.
struct Rotary {
  const float* cos = nullptr;
  const float* sin = nullptr;
  int half = 0;  // rotary_dim / 2
  bool neox = true;
};

// One pass over each row's qkv: rotates its q heads in place and its k heads
// into the paged cache of one layer ([slot][kv_head][head_dim] of `kv_dtype`),
// with V copied beside them. A thread takes 4 rotation pairs in 16-byte loads
// (neox-style rotation over whole heads) or one pair or value (other layouts),
// so decode's single row still spreads over the GPU.
void rope_kv_write(float* qkv, const AttentionShape& shape, const StepRows& step, const Rotary& rotary, void* keys,
                   void* values, DType kv_dtype, cudaStream_t stream);
// Causal attention of each listed row's q heads over its sequence's cached keys
// 0..position (within the sliding window), output [rows, heads * head_dim], for
// rows with one query each (decode). `row_list` (device) holds shape.rows row
// indices, or is null for rows 0..shape.rows-1. Split over the sequence
// (flash-decoding): a block takes one partition of a row's keys for one KV head
// and the q heads that share it, and a second kernel merges the partitions
// through `workspace` (attention_workspace_floats(shape) floats; null when that
// is 0). Needs shape.max_context > every row's position.
void attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
               const void* keys, const void* values, DType kv_dtype, float* out, float* workspace, cudaStream_t stream);
// E4M3 caches take decode_attention_mma when the GPU has it (below), other
// caches the CUDA-core kernel (attention_on_cuda_cores); KILN_CUDA_DECODE_ATTENTION=
// cores|mma overrides that for comparison.
// The workspace attention needs for `shape` (from its rows, heads, head_dim,
// sliding window and max_context alone, enough for either kernel); 0 when
// every row fits one partition.
int64_t attention_workspace_floats(const AttentionShape& shape);
// The split kernel on CUDA cores (every cache dtype), callable directly for checks and benchmarks.
void attention_on_cuda_cores(const float* qkv, const AttentionShape& shape, const StepRows& step,
                             const int32_t* row_list, const void* keys, const void* values, DType kv_dtype, float* out,
                             float* workspace, cudaStream_t stream);
// The same split on tensor cores (mma.sync, sm_80+): a warp per (row, KV
// head, up to 16 of its q heads, partition), E4M3 or 16-bit caches, head_dim
// 16, 32, 64 or 128. Products in fp16 (E4M3 caches) or the cache's type.
bool decode_attention_mma_supports(int head_dim, DType kv_dtype);
struct AttentionPartitions {
  int partition = 0;   // keys per partition
  int partitions = 1;  // per row
};
AttentionPartitions decode_attention_mma_partitions(const AttentionShape& shape);
// The sequence partitions of a split decode launch with `items_per_row` blocks
// (or warps) per row for each partition: about `target_items` in all when the
// rows are few, one partition per row when they are many; multiples of 64
// keys, at most the merge's 2048 per row. A function of the shape alone (rows,
// window, max_context), never of the rows' lengths, so one recorded launch
// serves every step.
AttentionPartitions attention_partitions(const AttentionShape& shape, int64_t items_per_row, int64_t target_items);
void decode_attention_mma(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                          const void* keys, const void* values, DType kv_dtype, float* out, float* workspace,
                          cudaStream_t stream);
// Combines the split kernels' per-partition (max, sum, unnormalized output) of
// rows with more than one partition into `out`.
void merge_attention_partitions(const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                                int partition, int partitions, const float* workspace, float* out, cudaStream_t stream);
// The previous one-block-per-(q head, row) kernel: attention's path for head
// sizes the split kernel does not vectorize; callable directly for checks and benchmarks.
void attention_per_head(const float* qkv, const AttentionShape& shape, const StepRows& step, const int32_t* row_list,
                        const void* keys, const void* values, DType kv_dtype, float* out, cudaStream_t stream);

// Up to kPrefillTile consecutive step rows of one sequence (a prompt chunk's slice).
constexpr int kPrefillTile = 64;
constexpr int kPrefillMaxHeadDim = 128;
struct QueryTile {
  int32_t first_row = 0;
  int32_t rows = 0;
};
bool prefill_attention_supports(int head_dim);
// The same attention for prompt chunks, flash-style over tiles of rows and keys.
void prefill_attention(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles,
                       int num_tiles, const void* keys, const void* values, DType kv_dtype, float* out,
                       cudaStream_t stream);

// The same on tensor cores (mma.sync, sm_80+) in the engine's 16-bit
// compute dtype, for KV caches of that dtype or E4M3, and head sizes that are
// multiples of 8 up to 128.
bool prefill_attention_mma_supports(int head_dim, DType kv_dtype, DType compute_dtype);
void prefill_attention_mma(const float* qkv, const AttentionShape& shape, const StepRows& step, const QueryTile* tiles,
                           int num_tiles, const void* keys, const void* values, DType kv_dtype, DType compute_dtype,
                           float* out, cudaStream_t stream);

void gated_activation(Activation act, const float* gate_up, int64_t rows, int64_t inner, float* out,
                      cudaStream_t stream);
void activation(Activation act, float* x, int64_t n, cudaStream_t stream);
void add(float* x, const float* y, int64_t n, cudaStream_t stream);
void fill(float* x, float value, int64_t n, cudaStream_t stream);
// out[rows[i]] += weights[i] * src[i]
void scale_add_rows(const float* src, const int64_t* rows, const float* weights, int64_t count, int64_t cols,
                    float* out, cudaStream_t stream);
// Per row: argmax (first of equal maxima), its logit, log(sum(exp(row))); device outputs.
void logits_summary(const float* logits, int64_t rows, int64_t vocab, int32_t* argmax, float* max_logit,
                    float* log_sum_exp, cudaStream_t stream);
// Expert routing of `rows` rows of `experts` router logits
// (runtime::choose_experts' rules; experts <= 64, top_k <= 16): weights[rows][experts]
// (0 where unused) and used[experts] (1 or 0), device arrays.
constexpr int kMaxRoutedExperts = 64, kMaxExpertsPerToken = 16;
void route_experts(const float* logits, int64_t rows, int64_t experts, int64_t top_k, bool normalize, float* weights,
                   float* used, cudaStream_t stream);
// x[r] += weights[r * stride] * src[r] where that weight is not 0; nothing when *flag == 0.
void scale_add_if(const float* flag, const float* src, const float* weights, int64_t stride, int64_t rows, int64_t cols,
                  float* x, cudaStream_t stream);

// One logit row's sampling parameters (runtime::sample_token's rules).
struct SampleChoice {
  double temperature = 1, top_p = 1, uniform = 0;
  float penalty = 1;  // repetition penalty; 1: none
  int32_t row = 0;    // the logit row
  int32_t top_k = 0;  // 0: no limit
  int32_t greedy = 1;
  int32_t history_begin = 0, history_end = 0;  // the row's tokens so far, in `history`
};
// Device bytes `sample` needs for `count` rows.
std::size_t sample_workspace_bytes(int count, int64_t vocab);
// tokens[i], chosen[i]: the token choices[i] picks from its logit row and that
// token's unpenalized logit (device arrays of `count`).
void sample(const float* logits, int64_t vocab, const SampleChoice* choices, int count, const int32_t* history,
            void* workspace, int32_t* tokens, float* chosen, cudaStream_t stream);
// out[i] = x[rows[i]]
void gather_rows(const float* x, const int64_t* rows, int64_t count, int64_t cols, float* out, cudaStream_t stream);

// engine::ChunkChecksum on the device, for verifying uploaded weights: each
// piece is put together from its spans of device memory, zeros between them.
// Span offsets within a piece are multiples of 64 (a stripe never holds two
// spans). The keys are the format's (ChunkChecksum::keys()).
struct ChecksumSpan {
  uint64_t offset, nbytes;
  const unsigned char* data;
};
struct ChecksumPiece {
  uint64_t size;
  uint32_t first_span, spans;
};
struct ChecksumKeys {
  uint64_t stripe[16][8];
  uint64_t scramble[8];
  uint64_t initial[8];
  uint64_t multiplier;
};
// lanes[8 * i + l]: lane l of piece i after its last scramble (device
// arrays); ChunkChecksum::finish() makes the digest of them.
void checksum_lanes(const ChecksumPiece* pieces, int64_t n, const ChecksumSpan* spans, const ChecksumKeys& keys,
                    uint64_t* lanes, cudaStream_t stream);

}  // namespace kiln::runtime::cuda
