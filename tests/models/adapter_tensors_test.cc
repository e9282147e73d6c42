// The canonical tensors adapters produce, against the same tensors assembled in
// the test straight from each fixture's checkpoint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
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
using checkpoint::HfConfig;
using checkpoint::WeightSet;
using ::testing::HasSubstr;

const fs::path kModels = fs::path(KILN_FIXTURES) / "models";

using Loaded = testing::LoadedFixture;

// Row r of a [rows, cols] tensor.
const float* row(const FloatTensor& t, int64_t r) { return t.data() + r * t.shape.at(1); }

void expect_rows_equal(const FloatTensor& actual, int64_t actual_row, const FloatTensor& source, int64_t source_row,
                       const std::string& what) {
  const int64_t cols = actual.shape.at(1);
  ASSERT_EQ(source.shape.at(1), cols);
  for (int64_t c = 0; c < cols; ++c) {
    ASSERT_EQ(row(actual, actual_row)[c], row(source, source_row)[c])
        << what << ": row " << actual_row << " (source row " << source_row << ") col " << c;
  }
}

TEST(LlamaTensors, QkvIsTheConcatenationOfQKV) {
  const Loaded m("llama");
  ASSERT_EQ(m.spec.num_kv_heads, 2);
  for (int64_t layer = 0; layer < 2; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".self_attn.";
    const FloatTensor q = m.checkpoint(p + "q_proj.weight"), k = m.checkpoint(p + "k_proj.weight"),
                      v = m.checkpoint(p + "v_proj.weight");
    ASSERT_EQ(q.shape, (Shape{64, 64}));
    ASSERT_EQ(k.shape, (Shape{32, 64}));
    const auto& canonical = m.find(tensor_names::layer(layer, tensor_names::kQkvWeight));
    EXPECT_EQ(canonical.layout, Layout::qkv);
    EXPECT_EQ(canonical.sources,
              (std::vector<std::string>{p + "q_proj.weight", p + "k_proj.weight", p + "v_proj.weight"}));
    const FloatTensor qkv = m.produce(canonical.name);
    ASSERT_EQ(qkv.shape, (Shape{128, 64}));
    for (int64_t r = 0; r < 64; ++r) expect_rows_equal(qkv, r, q, r, "q");
    for (int64_t r = 0; r < 32; ++r) expect_rows_equal(qkv, 64 + r, k, r, "k");
    for (int64_t r = 0; r < 32; ++r) expect_rows_equal(qkv, 96 + r, v, r, "v");
  }
}

TEST(LlamaTensors, NamesLayoutsAndDirectCopies) {
  const Loaded m("llama");
  namespace tn = tensor_names;
  // embed, final norm, lm_head, and per layer: 2 norms, qkv, out, gate_up, down.
  EXPECT_EQ(m.tensors.size(), 3u + 2 * 6);
  EXPECT_FALSE(m.has(tn::layer(0, tn::kQkvBias)));
  EXPECT_EQ(m.find(tn::kEmbed).layout, Layout::replicated);
  EXPECT_EQ(m.find(tn::layer(1, tn::kOutWeight)).layout, Layout::row);
  EXPECT_EQ(m.find(tn::layer(1, tn::kDownWeight)).layout, Layout::row);
  EXPECT_EQ(m.find(tn::layer(1, tn::kGateUpWeight)).layout, Layout::gate_up);

  const FloatTensor down = m.produce(tn::layer(1, tn::kDownWeight));
  const FloatTensor src = m.checkpoint("model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(down.values, src.values);
  const FloatTensor gate_up = m.produce(tn::layer(0, tn::kGateUpWeight));
  const FloatTensor gate = m.checkpoint("model.layers.0.mlp.gate_proj.weight");
  const FloatTensor up = m.checkpoint("model.layers.0.mlp.up_proj.weight");
  ASSERT_EQ(gate_up.shape, (Shape{320, 64}));
  for (int64_t r = 0; r < 160; ++r) {
    expect_rows_equal(gate_up, r, gate, r, "gate");
    expect_rows_equal(gate_up, 160 + r, up, r, "up");
  }
}

TEST(LlamaTensors, TiedEmbeddingsHaveNoLmHeadAndBf16IsWidenedExactly) {
  const Loaded m("llama3-tied-bf16-sharded");
  EXPECT_FALSE(m.has(tensor_names::kLmHead));
  const TensorView raw = m.weights.get("model.embed_tokens.weight");
  ASSERT_EQ(raw.dtype, DType::bf16);
  const FloatTensor embed = m.produce(tensor_names::kEmbed);
  const auto* bits = static_cast<const uint16_t*>(raw.data);
  for (std::size_t i = 0; i < embed.values.size(); ++i) {
    uint32_t widened = static_cast<uint32_t>(bits[i]) << 16;
    float expected;
    std::memcpy(&expected, &widened, 4);
    ASSERT_EQ(embed.values[i], expected) << i;
  }
}

TEST(InternLM2Tensors, GroupedWqkvIsUngroupedPerKvHead) {
  const Loaded m("internlm2");
  const int64_t heads = m.spec.num_heads, kv = m.spec.num_kv_heads, d = m.spec.head_dim;
  ASSERT_EQ(heads, 4);
  ASSERT_EQ(kv, 2);
  const int64_t group = heads / kv;
  for (int64_t layer = 0; layer < 2; ++layer) {
    const std::string source = "model.layers." + std::to_string(layer) + ".attention.wqkv.weight";
    const FloatTensor wqkv = m.checkpoint(source);
    ASSERT_EQ(wqkv.shape, (Shape{(heads + 2 * kv) * d, 64}));
    const FloatTensor qkv = m.produce(tensor_names::layer(layer, tensor_names::kQkvWeight));
    // wqkv rows: for each KV head h, [q_{h,0} .. q_{h,group-1}, k_h, v_h], each head_dim rows.
    for (int64_t h = 0; h < kv; ++h) {
      const int64_t block = h * (group + 2) * d;
      for (int64_t j = 0; j < group; ++j) {
        const int64_t q_head = h * group + j;
        for (int64_t i = 0; i < d; ++i) expect_rows_equal(qkv, q_head * d + i, wqkv, block + j * d + i, "q");
      }
      for (int64_t i = 0; i < d; ++i) {
        expect_rows_equal(qkv, heads * d + h * d + i, wqkv, block + group * d + i, "k");
        expect_rows_equal(qkv, (heads + kv) * d + h * d + i, wqkv, block + (group + 1) * d + i, "v");
      }
    }
  }
  // The other InternLM2 names.
  EXPECT_EQ(m.produce(tensor_names::kLmHead).values, m.checkpoint("output.weight").values);
  EXPECT_EQ(m.produce(tensor_names::layer(0, tensor_names::kOutWeight)).values,
            m.checkpoint("model.layers.0.attention.wo.weight").values);
  const FloatTensor gate_up = m.produce(tensor_names::layer(1, tensor_names::kGateUpWeight));
  const FloatTensor w1 = m.checkpoint("model.layers.1.feed_forward.w1.weight");
  const FloatTensor w3 = m.checkpoint("model.layers.1.feed_forward.w3.weight");
  for (int64_t r = 0; r < 160; ++r) {
    expect_rows_equal(gate_up, r, w1, r, "w1 (gate)");
    expect_rows_equal(gate_up, 160 + r, w3, r, "w3 (up)");
  }
}

TEST(QwenV1Tensors, GateIsW2AndUpIsW1) {
  const Loaded m("qwen-v1");
  for (int64_t layer = 0; layer < 2; ++layer) {
    const std::string p = "transformer.h." + std::to_string(layer) + ".mlp.";
    const FloatTensor w1 = m.checkpoint(p + "w1.weight"), w2 = m.checkpoint(p + "w2.weight");
    ASSERT_EQ(w1.shape, (Shape{160, 64}));
    const FloatTensor gate_up = m.produce(tensor_names::layer(layer, tensor_names::kGateUpWeight));
    ASSERT_EQ(gate_up.shape, (Shape{320, 64}));
    for (int64_t r = 0; r < 160; ++r) {
      expect_rows_equal(gate_up, r, w2, r, "rows [0,160) from w2");
      expect_rows_equal(gate_up, 160 + r, w1, r, "rows [160,320) from w1");
    }
    // c_attn is already [q; k; v] with a bias.
    const std::string a = "transformer.h." + std::to_string(layer) + ".attn.c_attn.";
    EXPECT_EQ(m.produce(tensor_names::layer(layer, tensor_names::kQkvWeight)).values,
              m.checkpoint(a + "weight").values);
    EXPECT_EQ(m.produce(tensor_names::layer(layer, tensor_names::kQkvBias)).values, m.checkpoint(a + "bias").values);
  }
  EXPECT_FALSE(m.has(tensor_names::layer(0, tensor_names::kOutBias)));
}

TEST(InternLMTensors, QkvBiasConcatenatesAndOutBiasIsCopied) {
  const Loaded m("internlm");
  const std::string p = "model.layers.1.self_attn.";
  const FloatTensor bias = m.produce(tensor_names::layer(1, tensor_names::kQkvBias));
  ASSERT_EQ(bias.shape, (Shape{192}));
  const FloatTensor q = m.checkpoint(p + "q_proj.bias"), k = m.checkpoint(p + "k_proj.bias"),
                    v = m.checkpoint(p + "v_proj.bias");
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(bias.values[i], q.values[i]);
    EXPECT_EQ(bias.values[64 + i], k.values[i]);
    EXPECT_EQ(bias.values[128 + i], v.values[i]);
  }
  EXPECT_EQ(m.produce(tensor_names::layer(1, tensor_names::kOutBias)).values, m.checkpoint(p + "o_proj.bias").values);
}

TEST(Baichuan2Tensors, LmHeadRowsAreUnitNormAndParallelToTheCheckpoints) {
  const Loaded m("baichuan2-7b");
  ASSERT_EQ(m.spec.family, "baichuan2");
  const FloatTensor raw = m.checkpoint("lm_head.weight");
  const FloatTensor head = m.produce(tensor_names::kLmHead);
  ASSERT_EQ(head.shape, (Shape{384, 64}));
  for (int64_t r = 0; r < 384; ++r) {
    double norm2 = 0, raw2 = 0, dot = 0;
    for (int64_t c = 0; c < 64; ++c) {
      norm2 += double(row(head, r)[c]) * row(head, r)[c];
      raw2 += double(row(raw, r)[c]) * row(raw, r)[c];
      dot += double(row(head, r)[c]) * row(raw, r)[c];
    }
    ASSERT_NEAR(std::sqrt(norm2), 1.0, 1e-6) << "row " << r;
    ASSERT_GT(raw2, 0.0);
    // Parallel and same direction: cos(angle) == 1, so each element is raw / |raw|.
    ASSERT_NEAR(dot / std::sqrt(norm2 * raw2), 1.0, 1e-6) << "row " << r;
    for (int64_t c = 0; c < 64; ++c) {
      ASSERT_NEAR(row(head, r)[c], row(raw, r)[c] / std::sqrt(raw2), 1e-6) << r << "," << c;
    }
  }
  // Baichuan (1) keeps lm_head as stored; W_pack is already [q; k; v].
  const Loaded v1("baichuan-7b");
  EXPECT_EQ(v1.produce(tensor_names::kLmHead).values, v1.checkpoint("lm_head.weight").values);
  EXPECT_EQ(v1.produce(tensor_names::layer(0, tensor_names::kQkvWeight)).values,
            v1.checkpoint("model.layers.0.self_attn.W_pack.weight").values);
}

TEST(AdapterTensors, EverySourceExistsAndEveryShapeIsProducedForEveryFixture) {
  for (const char* fixture :
       {"llama", "llama3-tied-bf16-sharded", "llama-fp16-bin", "mistral", "qwen2", "qwen-v1", "internlm", "internlm2",
        "baichuan-7b", "baichuan2-7b", "baichuan-13b", "baichuan2-13b"}) {
    SCOPED_TRACE(fixture);
    const Loaded m(fixture);
    for (const auto& t : m.tensors) {
      for (const auto& s : t.sources) EXPECT_TRUE(m.weights.contains(s)) << t.name << " <- " << s;
      EXPECT_EQ(t.produce().shape, t.shape) << t.name;
    }
  }
}

TEST(AdapterTensors, ShapeMismatchNamesTensorFileAndShapes) {
  // Override to 6 heads (3 KV heads) of head_dim 16: q_proj should be [96, 64], the checkpoint has [64, 64].
  HfConfig config = HfConfig::load(kModels / "llama");
  config.apply_override("num_attention_heads=6");
  config.apply_override("num_key_value_heads=3");
  const WeightSet weights = WeightSet::open(kModels / "llama");
  const Adapter& adapter = Registry::builtin().find(config);
  const ModelSpec spec = adapter.spec(config);
  const auto tensors = adapter.tensors(spec, weights);
  for (const auto& t : tensors) {
    if (t.name != tensor_names::layer(0, tensor_names::kQkvWeight)) continue;
    try {
      t.produce();
      ADD_FAILURE() << "mismatched shape accepted";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("model.layers.0.self_attn.q_proj.weight"));
      EXPECT_THAT(e.what(), HasSubstr("model.safetensors"));
      EXPECT_THAT(e.what(), HasSubstr("[64, 64]"));
      EXPECT_THAT(e.what(), HasSubstr("[96, 64]"));
    }
    return;
  }
  ADD_FAILURE() << "no qkv tensor";
}

}  // namespace
}  // namespace kiln::models
