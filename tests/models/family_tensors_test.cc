// The canonical tensors of the non-Llama families (GPT-2, GPTBigCode, Falcon,
// Mixtral, ChatGLM, Phi-2, GPT-J), against the same tensors assembled in the
// test straight from each fixture's checkpoint, following how the HF module
// that produced the fixture reads them (Conv1D computes x @ W with W stored
// [in, out]; Falcon's _split_heads; Mixtral's w1/w3/w2; ChatGLM's chunk(2) of
// dense_h_to_4h). Canonical matrices are row-major [out, in], qkv rows
// [all q; all k; all v], gate_up rows [gate; up].
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "core/error.h"
#include "loaded_fixture.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
namespace tn = tensor_names;
using checkpoint::HfConfig;
using checkpoint::WeightSet;

const fs::path kModels = fs::path(KILN_FIXTURES) / "models";

using Loaded = testing::LoadedFixture;

float at(const FloatTensor& t, int64_t r, int64_t c) {
  return t.values.at(static_cast<std::size_t>(r * t.shape.at(1) + c));
}

// Bit-exact equality of shape and values.
void expect_same(const FloatTensor& actual, const FloatTensor& expected, const std::string& what) {
  ASSERT_EQ(actual.shape, expected.shape) << what;
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    ASSERT_EQ(actual.values[i], expected.values[i]) << what << ": element " << i;
  }
}

// Canonical `name` is checkpoint `source` as stored.
void expect_copy(const Loaded& m, const std::string& name, const std::string& source) {
  expect_same(m.produce(name), m.checkpoint(source), name + " <- " + source);
}

// A Conv1D weight stored [in, out]: canonical[o][i] == stored[i][o].
void expect_transpose(const Loaded& m, const std::string& name, const std::string& source) {
  const FloatTensor canonical = m.produce(name);
  const FloatTensor stored = m.checkpoint(source);
  ASSERT_EQ(stored.shape.size(), 2u) << source;
  ASSERT_EQ(canonical.shape, (Shape{stored.shape[1], stored.shape[0]})) << name << " <- " << source;
  for (int64_t o = 0; o < canonical.shape[0]; ++o) {
    for (int64_t i = 0; i < canonical.shape[1]; ++i) {
      ASSERT_EQ(at(canonical, o, i), at(stored, i, o)) << name << " [" << o << ", " << i << "] <- " << source;
    }
  }
}

// Rows of `parts` one after the other (row-major, so the values concatenate).
FloatTensor stacked(const std::vector<FloatTensor>& parts) {
  FloatTensor out;
  out.shape = parts.at(0).shape;
  out.shape[0] = 0;
  for (const auto& p : parts) {
    out.shape[0] += p.shape[0];
    out.values.insert(out.values.end(), p.values.begin(), p.values.end());
  }
  return out;
}

std::string layer(int64_t i, const char* suffix) { return tn::layer(i, suffix); }

// ---------------------------------------------------------------------------
// GPT-2: Conv1D stores [in, out].

TEST(Gpt2Tensors, Conv1DMatricesAreTransposedAndEverythingElseCopied) {
  const Loaded m("gpt2");
  const int64_t H = m.spec.hidden_size;
  ASSERT_EQ(H, 64);
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    // c_attn: Conv1D(3 * n_embd, n_embd), weight [64, 192]; canonical [192, 64].
    ASSERT_EQ(m.checkpoint(p + "attn.c_attn.weight").shape, (Shape{H, 3 * H}));
    expect_transpose(m, layer(i, tn::kQkvWeight), p + "attn.c_attn.weight");
    expect_copy(m, layer(i, tn::kQkvBias), p + "attn.c_attn.bias");
    expect_transpose(m, layer(i, tn::kOutWeight), p + "attn.c_proj.weight");
    expect_copy(m, layer(i, tn::kOutBias), p + "attn.c_proj.bias");
    // c_fc: [64, 160] stored, [160, 64] canonical; mlp.c_proj: [160, 64] stored, [64, 160] canonical.
    ASSERT_EQ(m.checkpoint(p + "mlp.c_fc.weight").shape, (Shape{H, m.spec.intermediate_size}));
    expect_transpose(m, layer(i, tn::kUpWeight), p + "mlp.c_fc.weight");
    EXPECT_EQ(m.find(layer(i, tn::kUpWeight)).shape, (Shape{m.spec.intermediate_size, H}));
    expect_copy(m, layer(i, tn::kUpBias), p + "mlp.c_fc.bias");
    expect_transpose(m, layer(i, tn::kDownWeight), p + "mlp.c_proj.weight");
    EXPECT_EQ(m.find(layer(i, tn::kDownWeight)).shape, (Shape{H, m.spec.intermediate_size}));
    expect_copy(m, layer(i, tn::kDownBias), p + "mlp.c_proj.bias");
    expect_copy(m, layer(i, tn::kAttnNormWeight), p + "ln_1.weight");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "ln_1.bias");
    expect_copy(m, layer(i, tn::kMlpNormWeight), p + "ln_2.weight");
    expect_copy(m, layer(i, tn::kMlpNormBias), p + "ln_2.bias");
    EXPECT_FALSE(m.has(layer(i, tn::kGateUpWeight)));
  }
  // Embeddings are nn.Embedding, not Conv1D: as stored.
  expect_copy(m, tn::kEmbed, "transformer.wte.weight");
  expect_copy(m, tn::kPosEmbed, "transformer.wpe.weight");
  EXPECT_EQ(m.find(tn::kPosEmbed).shape, (Shape{256, H}));
  expect_copy(m, tn::kFinalNormWeight, "transformer.ln_f.weight");
  expect_copy(m, tn::kFinalNormBias, "transformer.ln_f.bias");
  // Tied: the LM head is wte; there is none to read.
  EXPECT_FALSE(m.has(tn::kLmHead));
  EXPECT_FALSE(m.has(tn::kLmHeadBias));
  // Tensor-parallel layouts.
  EXPECT_EQ(m.find(layer(0, tn::kQkvWeight)).layout, Layout::qkv);
  EXPECT_EQ(m.find(layer(0, tn::kUpWeight)).layout, Layout::column);
  EXPECT_EQ(m.find(layer(0, tn::kDownWeight)).layout, Layout::row);
  EXPECT_EQ(m.find(layer(0, tn::kOutWeight)).layout, Layout::row);
}

TEST(Gpt2Tensors, TransposedQkvComputesWhatConv1DComputes) {
  // Conv1D: y = x @ W + b with W [in, out]. The canonical [out, in] matrix must
  // give the same y as W x for an arbitrary x (a check of the orientation that
  // does not restate the transposition).
  const Loaded m("gpt2");
  const FloatTensor w = m.checkpoint("transformer.h.1.attn.c_attn.weight");  // [64, 192]
  const FloatTensor qkv = m.produce(layer(1, tn::kQkvWeight));               // [192, 64]
  const int64_t in = w.shape[0], out = w.shape[1];
  std::vector<double> x(static_cast<std::size_t>(in));
  for (int64_t k = 0; k < in; ++k) x[static_cast<std::size_t>(k)] = 0.01 * double((k * 37) % 23) - 0.1;
  for (int64_t o = 0; o < out; ++o) {
    double conv1d = 0, canonical = 0;
    for (int64_t k = 0; k < in; ++k) {
      conv1d += x[static_cast<std::size_t>(k)] * at(w, k, o);
      canonical += double(at(qkv, o, k)) * x[static_cast<std::size_t>(k)];
    }
    ASSERT_NEAR(canonical, conv1d, 1e-12) << "output " << o;
  }
}

// ---------------------------------------------------------------------------
// GPTBigCode (StarCoder): nn.Linear, stored [out, in], one K/V head.

TEST(StarCoderTensors, CAttnIsALinearUsedAsStored) {
  const Loaded m("starcoder");
  ASSERT_EQ(m.spec.family, "gpt_bigcode");
  const int64_t H = m.spec.hidden_size, d = m.spec.head_dim;
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    // Multi-query: c_attn rows [q (64); k (16); v (16)], split (embed_dim, 2 * kv_dim).
    ASSERT_EQ(m.checkpoint(p + "attn.c_attn.weight").shape, (Shape{H + 2 * d, H}));
    EXPECT_EQ(m.find(layer(i, tn::kQkvWeight)).shape, (Shape{64 + 16 + 16, 64}));
    expect_copy(m, layer(i, tn::kQkvWeight), p + "attn.c_attn.weight");
    expect_copy(m, layer(i, tn::kQkvBias), p + "attn.c_attn.bias");
    expect_copy(m, layer(i, tn::kOutWeight), p + "attn.c_proj.weight");
    expect_copy(m, layer(i, tn::kOutBias), p + "attn.c_proj.bias");
    expect_copy(m, layer(i, tn::kUpWeight), p + "mlp.c_fc.weight");
    expect_copy(m, layer(i, tn::kUpBias), p + "mlp.c_fc.bias");
    expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.c_proj.weight");
    expect_copy(m, layer(i, tn::kDownBias), p + "mlp.c_proj.bias");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "ln_1.bias");
    expect_copy(m, layer(i, tn::kMlpNormWeight), p + "ln_2.weight");
  }
  expect_copy(m, tn::kEmbed, "transformer.wte.weight");
  expect_copy(m, tn::kPosEmbed, "transformer.wpe.weight");
  EXPECT_FALSE(m.has(tn::kLmHead));
}

// ---------------------------------------------------------------------------
// Falcon

TEST(FalconTensors, FortyBStyleQkvIsRegroupedFromPerKvHeadBlocks) {
  const Loaded m("falcon-40b-style");
  const int64_t heads = m.spec.num_heads, kv = m.spec.num_kv_heads, d = m.spec.head_dim;
  ASSERT_EQ(heads, 4);
  ASSERT_EQ(kv, 2);
  ASSERT_EQ(d, 16);
  const int64_t group = heads / kv;  // 2 query heads per K/V head
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string source = "transformer.h." + std::to_string(i) + ".self_attention.query_key_value.weight";
    const FloatTensor fused = m.checkpoint(source);
    ASSERT_EQ(fused.shape, (Shape{(heads + 2 * kv) * d, 64}));
    // FalconAttention._split_heads (new architecture):
    //   qkv = fused.view(..., kv, group + 2, d); query = qkv[:, :, :, :-2], key = [-2], value = [-1],
    // query heads flattened kv-major: query head h * group + j is slot j of block h.
    std::vector<FloatTensor> q_rows, k_rows, v_rows;
    auto rows_of = [&](int64_t first) {
      FloatTensor t({d, fused.shape[1]});
      for (int64_t r = 0; r < d; ++r) {
        for (int64_t c = 0; c < fused.shape[1]; ++c)
          t.values[std::size_t(r * fused.shape[1] + c)] = at(fused, first + r, c);
      }
      return t;
    };
    for (int64_t h = 0; h < kv; ++h) {
      const int64_t block = h * (group + 2) * d;
      for (int64_t j = 0; j < group; ++j) q_rows.push_back(rows_of(block + j * d));
      k_rows.push_back(rows_of(block + group * d));
      v_rows.push_back(rows_of(block + (group + 1) * d));
    }
    std::vector<FloatTensor> all = q_rows;
    all.insert(all.end(), k_rows.begin(), k_rows.end());
    all.insert(all.end(), v_rows.begin(), v_rows.end());
    const FloatTensor expected = stacked(all);
    expect_same(m.produce(layer(i, tn::kQkvWeight)), expected, "regrouped qkv");
    // And it really is a permutation of the stored rows, not the stored order.
    EXPECT_NE(m.produce(layer(i, tn::kQkvWeight)).values, fused.values);
    EXPECT_FALSE(m.has(layer(i, tn::kQkvBias)));  // bias: false
  }
}

TEST(FalconTensors, FortyBStyleHasTwoNormsAndTiedHead) {
  const Loaded m("falcon-40b-style");
  ASSERT_TRUE(m.spec.parallel_two_norms);
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    expect_copy(m, layer(i, tn::kAttnNormWeight), p + "ln_attn.weight");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "ln_attn.bias");
    expect_copy(m, layer(i, tn::kMlpNormWeight), p + "ln_mlp.weight");
    expect_copy(m, layer(i, tn::kMlpNormBias), p + "ln_mlp.bias");
    expect_copy(m, layer(i, tn::kOutWeight), p + "self_attention.dense.weight");
    expect_copy(m, layer(i, tn::kUpWeight), p + "mlp.dense_h_to_4h.weight");
    expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.dense_4h_to_h.weight");
    EXPECT_FALSE(m.has(layer(i, tn::kOutBias)));
    EXPECT_FALSE(m.has(layer(i, tn::kUpBias)));
    EXPECT_FALSE(m.has(layer(i, tn::kDownBias)));
  }
  expect_copy(m, tn::kEmbed, "transformer.word_embeddings.weight");
  expect_copy(m, tn::kFinalNormWeight, "transformer.ln_f.weight");
  expect_copy(m, tn::kFinalNormBias, "transformer.ln_f.bias");
  EXPECT_FALSE(m.has(tn::kLmHead));
}

TEST(FalconTensors, SevenBStyleQkvIsStoredQueriesThenKeyThenValue) {
  const Loaded m("falcon-7b-style");
  ASSERT_EQ(m.spec.num_kv_heads, 1);
  const int64_t H = m.spec.hidden_size, d = m.spec.head_dim;
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    // _split_heads (multi_query): view(..., num_heads + 2, d): heads [0, n) are q, then k, then v.
    ASSERT_EQ(m.checkpoint(p + "self_attention.query_key_value.weight").shape, (Shape{H + 2 * d, H}));
    expect_copy(m, layer(i, tn::kQkvWeight), p + "self_attention.query_key_value.weight");
    expect_copy(m, layer(i, tn::kAttnNormWeight), p + "input_layernorm.weight");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "input_layernorm.bias");
    // One norm feeds attention and MLP: no mlp_norm.
    EXPECT_FALSE(m.has(layer(i, tn::kMlpNormWeight)));
    EXPECT_FALSE(m.has(layer(i, tn::kMlpNormBias)));
    expect_copy(m, layer(i, tn::kOutWeight), p + "self_attention.dense.weight");
    expect_copy(m, layer(i, tn::kUpWeight), p + "mlp.dense_h_to_4h.weight");
    expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.dense_4h_to_h.weight");
  }
  expect_copy(m, tn::kEmbed, "transformer.word_embeddings.weight");
  expect_copy(m, tn::kFinalNormBias, "transformer.ln_f.bias");
  EXPECT_FALSE(m.has(tn::kLmHead));
}

// ---------------------------------------------------------------------------
// Mixtral: block_sparse_moe.gate is the router; each expert's w1 is the gate,
// w3 the up projection, w2 the down projection (silu(w1 x) * w3 x, then w2).

TEST(MixtralTensors, RouterAndExpertsFromBlockSparseMoe) {
  const Loaded m("mixtral");
  const int64_t I = m.spec.intermediate_size, H = m.spec.hidden_size;
  ASSERT_EQ(I, 160);
  ASSERT_EQ(m.spec.num_experts, 4);
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "model.layers." + std::to_string(i) + ".";
    expect_copy(m, layer(i, tn::kRouterWeight), p + "block_sparse_moe.gate.weight");
    EXPECT_EQ(m.find(layer(i, tn::kRouterWeight)).shape, (Shape{m.spec.num_experts, H}));
    for (int64_t e = 0; e < m.spec.num_experts; ++e) {
      SCOPED_TRACE(e);
      const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      const FloatTensor w1 = m.checkpoint(x + "w1.weight"), w3 = m.checkpoint(x + "w3.weight");
      const FloatTensor gate_up = m.produce(tn::expert(i, e, tn::kExpertGateUpWeight));
      ASSERT_EQ(gate_up.shape, (Shape{2 * I, H}));
      for (int64_t r = 0; r < I; ++r) {
        for (int64_t c = 0; c < H; ++c) {
          ASSERT_EQ(at(gate_up, r, c), at(w1, r, c)) << "gate row " << r;
          ASSERT_EQ(at(gate_up, I + r, c), at(w3, r, c)) << "up row " << r;
        }
      }
      expect_copy(m, tn::expert(i, e, tn::kExpertDownWeight), x + "w2.weight");
      EXPECT_EQ(m.find(tn::expert(i, e, tn::kExpertGateUpWeight)).layout, Layout::gate_up);
      EXPECT_EQ(m.find(tn::expert(i, e, tn::kExpertDownWeight)).layout, Layout::row);
    }
    // No dense MLP besides the experts.
    EXPECT_FALSE(m.has(layer(i, tn::kGateUpWeight)));
    EXPECT_FALSE(m.has(layer(i, tn::kDownWeight)));
    // Attention as Llama: [q; k; v].
    expect_same(m.produce(layer(i, tn::kQkvWeight)),
                stacked({m.checkpoint(p + "self_attn.q_proj.weight"), m.checkpoint(p + "self_attn.k_proj.weight"),
                         m.checkpoint(p + "self_attn.v_proj.weight")}),
                "qkv");
    expect_copy(m, layer(i, tn::kOutWeight), p + "self_attn.o_proj.weight");
  }
  // The specific case of the brief: expert 1 of layer 0.
  const FloatTensor gate_up = m.produce("layers.0.moe.experts.1.gate_up.weight");
  const FloatTensor w1 = m.checkpoint("model.layers.0.block_sparse_moe.experts.1.w1.weight");
  const FloatTensor w3 = m.checkpoint("model.layers.0.block_sparse_moe.experts.1.w3.weight");
  EXPECT_EQ(std::vector<float>(gate_up.values.begin(), gate_up.values.begin() + 160 * 64), w1.values);
  EXPECT_EQ(std::vector<float>(gate_up.values.begin() + 160 * 64, gate_up.values.end()), w3.values);
  expect_copy(m, tn::kLmHead, "lm_head.weight");
}

// ---------------------------------------------------------------------------
// ChatGLM2/3

TEST(ChatGLMTensors, FusedProjectionsAreUsedAsStoredAndInvFreqIsIgnored) {
  for (const char* fixture : {"chatglm2", "chatglm3-32k"}) {
    SCOPED_TRACE(fixture);
    const Loaded m(fixture);
    const int64_t I = m.spec.intermediate_size, H = m.spec.hidden_size;
    for (int64_t i = 0; i < m.spec.num_layers; ++i) {
      SCOPED_TRACE(i);
      const std::string p = "transformer.encoder.layers." + std::to_string(i) + ".";
      // mlp: a0, a1 = dense_h_to_4h(h).chunk(2); silu(a0) * a1: rows [gate; up] as stored.
      ASSERT_EQ(m.checkpoint(p + "mlp.dense_h_to_4h.weight").shape, (Shape{2 * I, H}));
      expect_copy(m, layer(i, tn::kGateUpWeight), p + "mlp.dense_h_to_4h.weight");
      expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.dense_4h_to_h.weight");
      // query_key_value.split([nh * hd, g * hd, g * hd]): already [q; k; v], with its bias.
      expect_copy(m, layer(i, tn::kQkvWeight), p + "self_attention.query_key_value.weight");
      expect_copy(m, layer(i, tn::kQkvBias), p + "self_attention.query_key_value.bias");
      EXPECT_EQ(m.find(layer(i, tn::kQkvWeight)).shape, (Shape{128, 64}));
      expect_copy(m, layer(i, tn::kOutWeight), p + "self_attention.dense.weight");
      EXPECT_FALSE(m.has(layer(i, tn::kOutBias)));
      expect_copy(m, layer(i, tn::kAttnNormWeight), p + "input_layernorm.weight");
      expect_copy(m, layer(i, tn::kMlpNormWeight), p + "post_attention_layernorm.weight");
      EXPECT_FALSE(m.has(layer(i, tn::kAttnNormBias)));  // RMSNorm
    }
    expect_copy(m, tn::kEmbed, "transformer.embedding.word_embeddings.weight");
    expect_copy(m, tn::kFinalNormWeight, "transformer.encoder.final_layernorm.weight");
    expect_copy(m, tn::kLmHead, "transformer.output_layer.weight");

    // The rotary buffer real checkpoints carry: ignorable, and read by nothing.
    const std::string inv_freq = "transformer.rotary_pos_emb.inv_freq";
    ASSERT_TRUE(m.weights.contains(inv_freq));
    EXPECT_TRUE(m.adapter->ignorable(inv_freq));
    for (const auto& t : m.tensors) {
      for (const auto& s : t.sources) EXPECT_NE(s, inv_freq) << t.name;
    }
    EXPECT_FALSE(m.adapter->ignorable("transformer.encoder.layers.0.self_attention.query_key_value.weight"));
  }
}

// ---------------------------------------------------------------------------
// Phi-2 and GPT-J: separate q/k/v, an LM head with a bias.

TEST(PhiTensors, BiasesEverywhereAndLmHeadBias) {
  const Loaded m("phi2");
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "model.layers." + std::to_string(i) + ".";
    expect_same(m.produce(layer(i, tn::kQkvWeight)),
                stacked({m.checkpoint(p + "self_attn.q_proj.weight"), m.checkpoint(p + "self_attn.k_proj.weight"),
                         m.checkpoint(p + "self_attn.v_proj.weight")}),
                "qkv weight");
    expect_same(m.produce(layer(i, tn::kQkvBias)),
                stacked({m.checkpoint(p + "self_attn.q_proj.bias"), m.checkpoint(p + "self_attn.k_proj.bias"),
                         m.checkpoint(p + "self_attn.v_proj.bias")}),
                "qkv bias");
    expect_copy(m, layer(i, tn::kOutWeight), p + "self_attn.dense.weight");
    expect_copy(m, layer(i, tn::kOutBias), p + "self_attn.dense.bias");
    expect_copy(m, layer(i, tn::kUpWeight), p + "mlp.fc1.weight");
    expect_copy(m, layer(i, tn::kUpBias), p + "mlp.fc1.bias");
    expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.fc2.weight");
    expect_copy(m, layer(i, tn::kDownBias), p + "mlp.fc2.bias");
    expect_copy(m, layer(i, tn::kAttnNormWeight), p + "input_layernorm.weight");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "input_layernorm.bias");
    EXPECT_FALSE(m.has(layer(i, tn::kMlpNormWeight)));  // one norm for the parallel block
  }
  expect_copy(m, tn::kEmbed, "model.embed_tokens.weight");
  expect_copy(m, tn::kFinalNormWeight, "model.final_layernorm.weight");
  expect_copy(m, tn::kFinalNormBias, "model.final_layernorm.bias");
  expect_copy(m, tn::kLmHead, "lm_head.weight");
  expect_copy(m, tn::kLmHeadBias, "lm_head.bias");
  EXPECT_EQ(m.find(tn::kLmHeadBias).shape, (Shape{m.spec.vocab_size}));
}

TEST(GptJTensors, QkvConcatenatesProjectionsWithoutBiasAndLmHeadHasBias) {
  const Loaded m("gptj");
  for (int64_t i = 0; i < m.spec.num_layers; ++i) {
    SCOPED_TRACE(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    const auto& qkv = m.find(layer(i, tn::kQkvWeight));
    EXPECT_EQ(qkv.sources,
              (std::vector<std::string>{p + "attn.q_proj.weight", p + "attn.k_proj.weight", p + "attn.v_proj.weight"}));
    expect_same(m.produce(qkv.name),
                stacked({m.checkpoint(p + "attn.q_proj.weight"), m.checkpoint(p + "attn.k_proj.weight"),
                         m.checkpoint(p + "attn.v_proj.weight")}),
                "qkv");
    EXPECT_FALSE(m.has(layer(i, tn::kQkvBias)));
    EXPECT_FALSE(m.has(layer(i, tn::kOutBias)));
    expect_copy(m, layer(i, tn::kOutWeight), p + "attn.out_proj.weight");
    expect_copy(m, layer(i, tn::kUpWeight), p + "mlp.fc_in.weight");
    expect_copy(m, layer(i, tn::kUpBias), p + "mlp.fc_in.bias");
    expect_copy(m, layer(i, tn::kDownWeight), p + "mlp.fc_out.weight");
    expect_copy(m, layer(i, tn::kDownBias), p + "mlp.fc_out.bias");
    expect_copy(m, layer(i, tn::kAttnNormWeight), p + "ln_1.weight");
    expect_copy(m, layer(i, tn::kAttnNormBias), p + "ln_1.bias");
    EXPECT_FALSE(m.has(layer(i, tn::kMlpNormWeight)));
  }
  expect_copy(m, tn::kEmbed, "transformer.wte.weight");
  expect_copy(m, tn::kFinalNormWeight, "transformer.ln_f.weight");
  expect_copy(m, tn::kFinalNormBias, "transformer.ln_f.bias");
  expect_copy(m, tn::kLmHead, "lm_head.weight");
  expect_copy(m, tn::kLmHeadBias, "lm_head.bias");
  // Causal-mask buffers older GPT-J and GPT-2 checkpoints carry are not weights.
  EXPECT_TRUE(m.adapter->ignorable("transformer.h.0.attn.bias"));
  EXPECT_TRUE(m.adapter->ignorable("transformer.h.0.attn.masked_bias"));
  EXPECT_FALSE(m.adapter->ignorable("transformer.h.0.mlp.fc_in.bias"));
}

// ---------------------------------------------------------------------------
// Every fixture: each checkpoint tensor is read exactly where it belongs.

TEST(FamilyTensors, EveryCheckpointTensorIsReadOrIgnorableAndEveryShapeIsProduced) {
  for (const char* fixture : {"mixtral", "falcon-7b-style", "falcon-40b-style", "gptj", "gpt2", "starcoder", "phi2",
                              "chatglm2", "chatglm3-32k"}) {
    SCOPED_TRACE(fixture);
    const Loaded m(fixture);
    std::set<std::string> read, names;
    for (const auto& t : m.tensors) {
      EXPECT_TRUE(names.insert(t.name).second) << "duplicate canonical tensor " << t.name;
      for (const auto& s : t.sources) {
        EXPECT_TRUE(m.weights.contains(s)) << t.name << " <- " << s;
        EXPECT_FALSE(m.adapter->ignorable(s)) << t.name << " reads ignorable " << s;
        read.insert(s);
      }
      EXPECT_EQ(t.produce().shape, t.shape) << t.name;
    }
    for (const auto& name : m.weights.names()) {
      EXPECT_TRUE(read.count(name) || m.adapter->ignorable(name)) << "checkpoint tensor " << name << " unused";
    }
  }
}

TEST(FamilyTensors, UntiedFalconReadsItsLmHead) {
  // tie_word_embeddings false: the head is read from lm_head.weight, which this
  // tied fixture does not have; the error names it.
  HfConfig config = HfConfig::load(kModels / "falcon-7b-style");
  config.apply_override("tie_word_embeddings=false");
  const WeightSet weights = WeightSet::open(kModels / "falcon-7b-style");
  const Adapter& adapter = Registry::builtin().find(config);
  const auto tensors = adapter.tensors(adapter.spec(config), weights);
  for (const auto& t : tensors) {
    if (t.name != tn::kLmHead) continue;
    EXPECT_EQ(t.sources, std::vector<std::string>{"lm_head.weight"});
    try {
      t.produce();
      ADD_FAILURE() << "missing lm_head.weight accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("lm_head.weight"));
    }
    return;
  }
  ADD_FAILURE() << "no lm_head tensor when untied";
}

}  // namespace
}  // namespace kiln::models
