// Registry choice and ModelSpec fields for every Llama-shaped fixture, with the
// expected values read off each fixture's config.json by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/hf_config.h"
#include "core/error.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
using checkpoint::HfConfig;
using ::testing::HasSubstr;

const fs::path kModels = fs::path(KILN_FIXTURES) / "models";

HfConfig load(const std::string& fixture) { return HfConfig::load(kModels / fixture); }

ModelSpec spec_of(const HfConfig& config) { return Registry::builtin().find(config).spec(config); }
ModelSpec spec_of(const std::string& fixture) { return spec_of(load(fixture)); }

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

struct Expected {
  const char* fixture;
  const char* adapter;
  const char* family;
  const char* architecture;
  int64_t num_kv_heads;
  int64_t intermediate_size;
  int64_t max_positions;
  double norm_eps;
  double theta;
  bool qkv_bias;
  bool out_bias;
  PositionKind positions;
};

// Every fixture here: vocab 384, hidden 64, 2 layers, 4 heads of 16.
const Expected kExpected[] = {
    {"llama", "llama", "llama", "LlamaForCausalLM", 2, 160, 256, 1e-5, 1e4, false, false, PositionKind::rope},
    {"llama3-tied-bf16-sharded", "llama", "llama", "LlamaForCausalLM", 2, 160, 256, 1e-5, 5e5, false, false,
     PositionKind::rope},
    // No `architectures`: chosen by model_type.
    {"llama-fp16-bin", "llama", "llama", "llama", 4, 160, 256, 1e-6, 1e4, false, false, PositionKind::rope},
    {"mistral", "llama", "mistral", "MistralForCausalLM", 2, 160, 256, 1e-5, 1e4, false, false, PositionKind::rope},
    {"qwen2", "llama", "qwen2", "Qwen2ForCausalLM", 2, 160, 256, 1e-6, 1e6, true, false, PositionKind::rope},
    {"qwen-v1", "qwen", "qwen", "QWenLMHeadModel", 4, 160, 256, 1e-6, 1e4, true, false, PositionKind::rope},
    {"internlm", "llama", "internlm", "InternLMForCausalLM", 4, 160, 256, 1e-6, 1e4, true, true, PositionKind::rope},
    {"internlm2", "internlm2", "internlm2", "InternLM2ForCausalLM", 2, 160, 256, 1e-6, 1e6, false, false,
     PositionKind::rope},
    {"baichuan-7b", "baichuan", "baichuan", "BaiChuanForCausalLM", 4, 160, 256, 1e-6, 1e4, false, false,
     PositionKind::rope},
    {"baichuan2-7b", "baichuan", "baichuan2", "BaichuanForCausalLM", 4, 160, 256, 1e-6, 1e4, false, false,
     PositionKind::rope},
    // 13B: no max_position_embeddings -> ALiBi, context from model_max_length.
    {"baichuan-13b", "baichuan", "baichuan", "BaichuanForCausalLM", 4, 160, 256, 1e-6, 1e4, false, false,
     PositionKind::alibi},
    {"baichuan2-13b", "baichuan", "baichuan2", "BaichuanForCausalLM", 4, 160, 256, 1e-6, 1e4, false, false,
     PositionKind::alibi},
};

TEST(Registry, PicksTheAdapterAndFillsTheSpecForEveryLlamaShapedFixture) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.fixture);
    const HfConfig config = load(e.fixture);
    const Adapter& adapter = Registry::builtin().find(config);
    EXPECT_EQ(adapter.name(), e.adapter);
    const ModelSpec s = adapter.spec(config);
    EXPECT_EQ(s.family, e.family);
    EXPECT_EQ(s.hf_architecture, e.architecture);
    EXPECT_EQ(s.vocab_size, 384);
    EXPECT_EQ(s.hidden_size, 64);
    EXPECT_EQ(s.num_layers, 2);
    EXPECT_EQ(s.num_heads, 4);
    EXPECT_EQ(s.num_kv_heads, e.num_kv_heads);
    EXPECT_EQ(s.head_dim, 16);
    EXPECT_EQ(s.intermediate_size, e.intermediate_size);
    EXPECT_EQ(s.max_positions, e.max_positions);
    EXPECT_EQ(s.norm, NormKind::rms);
    EXPECT_DOUBLE_EQ(s.norm_eps, e.norm_eps);
    EXPECT_EQ(s.activation, Activation::silu);
    EXPECT_TRUE(s.gated_mlp);
    EXPECT_EQ(s.qkv_bias, e.qkv_bias);
    EXPECT_EQ(s.out_bias, e.out_bias);
    EXPECT_EQ(s.positions, e.positions);
    EXPECT_EQ(s.rope.style, RopeStyle::neox);
    EXPECT_EQ(s.rope.rotary_dim, 16);
    EXPECT_DOUBLE_EQ(s.rope.theta, e.theta);
    EXPECT_EQ(s.qkv_rows(), 64 + 2 * e.num_kv_heads * 16);
  }
}

TEST(Registry, QwenV1IntermediateSizeIsHalfOfConfigs) {
  const auto config = read_json(kModels / "qwen-v1" / "config.json");
  ASSERT_EQ(config["intermediate_size"].get<int64_t>(), 320);
  const ModelSpec s = spec_of("qwen-v1");
  EXPECT_EQ(s.intermediate_size, 160);  // w1 and w2 are 160 rows each
  EXPECT_EQ(s.num_kv_heads, s.num_heads);
  EXPECT_EQ(s.head_dim, 16);  // kv_channels
  EXPECT_FALSE(s.out_bias);   // no_bias: true
  EXPECT_TRUE(s.qkv_bias);    // c_attn always has a bias
}

TEST(Registry, MistralSlidingWindowAndTransformers5RopeParameters) {
  const ModelSpec s = spec_of("mistral");
  EXPECT_EQ(s.sliding_window, 8);
  EXPECT_DOUBLE_EQ(s.rope.theta, 10000.0);
  EXPECT_EQ(s.rope.scaling, RopeScaling::none);  // rope_type "default"
  EXPECT_EQ(s.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(s.bos_token_id, 1);

  // Mistral's theta equals the default, so also read a different one from rope_parameters.
  auto json = read_json(kModels / "mistral" / "config.json");
  ASSERT_FALSE(json.contains("rope_theta"));
  json["rope_parameters"]["rope_theta"] = 123456.0;
  EXPECT_DOUBLE_EQ(spec_of(HfConfig::from_json(json)).rope.theta, 123456.0);
}

TEST(Registry, Qwen2HasQkvBiasAndNoWindowWhenDisabled) {
  const ModelSpec s = spec_of("qwen2");
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_FALSE(s.out_bias);
  EXPECT_EQ(s.sliding_window, 0);             // use_sliding_window: false
  EXPECT_DOUBLE_EQ(s.rope.theta, 1000000.0);  // from rope_parameters only
  EXPECT_TRUE(s.eos_token_ids.empty());       // eos_token_id: null, no generation_config eos
  EXPECT_EQ(s.bos_token_id, -1);

  // sliding_window is set but use_sliding_window is false: no window.
  auto json = read_json(kModels / "qwen2" / "config.json");
  json["sliding_window"] = 32;
  EXPECT_EQ(spec_of(HfConfig::from_json(json)).sliding_window, 0);
}

TEST(Registry, Qwen2WindowAppliesOnlyFromMaxWindowLayers) {
  auto json = read_json(kModels / "qwen2" / "config.json");
  ASSERT_EQ(json["max_window_layers"].get<int64_t>(), 28);
  json["use_sliding_window"] = true;
  json["sliding_window"] = 32;
  EXPECT_EQ(spec_of(HfConfig::from_json(json)).sliding_window, 0);
  // Every layer past max_window_layers: the window applies to all, which the spec can express.
  json["max_window_layers"] = 0;
  json.erase("layer_types");
  EXPECT_EQ(spec_of(HfConfig::from_json(json)).sliding_window, 32);
  EXPECT_TRUE(spec_of(HfConfig::from_json(json)).sliding_layers.empty());
  // A mix: layer 0 full, layer 1 windowed.
  json["max_window_layers"] = 1;
  const ModelSpec mixed = spec_of(HfConfig::from_json(json));
  EXPECT_EQ(mixed.window_of(0), 0);
  EXPECT_EQ(mixed.window_of(1), 32);
  // layer_types, when listed, decide.
  json["layer_types"] = {"sliding_attention", "full_attention"};
  const ModelSpec listed = spec_of(HfConfig::from_json(json));
  EXPECT_EQ(listed.window_of(0), 32);
  EXPECT_EQ(listed.window_of(1), 0);
}

TEST(Registry, InternLMHasQkvAndOutBias) {
  const ModelSpec s = spec_of("internlm");
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.out_bias);
  auto json = read_json(kModels / "internlm" / "config.json");
  json["bias"] = false;
  const ModelSpec no_bias = spec_of(HfConfig::from_json(json));
  EXPECT_FALSE(no_bias.qkv_bias);
  EXPECT_FALSE(no_bias.out_bias);
}

TEST(Registry, InternLM2BiasDefaultsToTrueAsItsConfigClassDoes) {
  auto json = read_json(kModels / "internlm2" / "config.json");
  json.erase("bias");
  const ModelSpec s = spec_of(HfConfig::from_json(json));
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.out_bias);
}

TEST(Registry, Llama3RopeScalingAndTiedEmbeddings) {
  const ModelSpec s = spec_of("llama3-tied-bf16-sharded");
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_EQ(s.rope.scaling, RopeScaling::llama3);
  EXPECT_DOUBLE_EQ(s.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(s.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(s.rope.high_freq_factor, 4.0);
  EXPECT_EQ(s.rope.original_max_positions, 64);
  EXPECT_DOUBLE_EQ(s.rope.theta, 500000.0);
  EXPECT_EQ(s.rope.frequency_dtype, DType::bf16);  // torch_dtype bfloat16: HF's inv_freq is bf16 too

  // The same settings in transformers 5 style: rope_parameters holds theta and scaling, "dtype" the dtype.
  auto json = read_json(kModels / "llama3-tied-bf16-sharded" / "config.json");
  json["rope_parameters"] = json["rope_scaling"];
  json["rope_parameters"]["rope_theta"] = json["rope_theta"];
  json["dtype"] = json["torch_dtype"];
  json.erase("rope_scaling");
  json.erase("rope_theta");
  json.erase("torch_dtype");
  const ModelSpec v5 = spec_of(HfConfig::from_json(json));
  EXPECT_EQ(v5.rope.scaling, RopeScaling::llama3);
  EXPECT_DOUBLE_EQ(v5.rope.factor, 8.0);
  EXPECT_EQ(v5.rope.original_max_positions, 64);
  EXPECT_DOUBLE_EQ(v5.rope.theta, 500000.0);
  EXPECT_EQ(v5.rope.frequency_dtype, DType::bf16);

  const ModelSpec plain = spec_of("llama");
  EXPECT_FALSE(plain.tied_embeddings);
  EXPECT_EQ(plain.rope.scaling, RopeScaling::none);
  EXPECT_EQ(plain.rope.frequency_dtype, DType::f32);
  EXPECT_EQ(plain.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(plain.bos_token_id, 1);
}

TEST(Registry, LinearAndUnsupportedRopeScaling) {
  auto json = read_json(kModels / "llama" / "config.json");
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.5}};
  const ModelSpec s = spec_of(HfConfig::from_json(json));
  EXPECT_EQ(s.rope.scaling, RopeScaling::linear);
  EXPECT_DOUBLE_EQ(s.rope.factor, 2.5);

  json["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  try {
    spec_of(HfConfig::from_json(json, "/x/config.json"));
    ADD_FAILURE() << "yarn accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("yarn"));
    EXPECT_THAT(e.what(), HasSubstr("/x/config.json"));
  }
}

TEST(Registry, Baichuan2ByVersionOrByVocabularyOverride) {
  EXPECT_EQ(spec_of("baichuan-7b").family, "baichuan");
  EXPECT_EQ(spec_of("baichuan2-7b").family, "baichuan2");  // baichuan_version: 2

  HfConfig by_version = load("baichuan-7b");
  by_version.apply_override("baichuan_version=2");
  EXPECT_EQ(spec_of(by_version).family, "baichuan2");

  HfConfig by_vocab = load("baichuan-7b");
  by_vocab.apply_override("vocab_size=125696");
  const ModelSpec s = spec_of(by_vocab);
  EXPECT_EQ(s.vocab_size, 125696);
  EXPECT_EQ(s.family, "baichuan2");

  HfConfig other_vocab = load("baichuan-7b");
  other_vocab.apply_override("vocab_size=125695");
  EXPECT_EQ(spec_of(other_vocab).family, "baichuan");
}

TEST(Registry, BaichuanPositionsFollowMaxPositionEmbeddingsAndOverride) {
  EXPECT_FALSE(read_json(kModels / "baichuan-13b" / "config.json").contains("max_position_embeddings"));
  EXPECT_EQ(spec_of("baichuan-13b").positions, PositionKind::alibi);
  EXPECT_EQ(spec_of("baichuan-7b").positions, PositionKind::rope);

  HfConfig to_rope = load("baichuan-13b");
  to_rope.apply_override("position_embedding=rope");  // not JSON: taken as the string "rope"
  EXPECT_EQ(spec_of(to_rope).positions, PositionKind::rope);

  HfConfig to_alibi = load("baichuan-7b");
  to_alibi.apply_override("position_embedding=\"alibi\"");
  EXPECT_EQ(spec_of(to_alibi).positions, PositionKind::alibi);

  HfConfig bad = load("baichuan-7b");
  bad.apply_override("position_embedding=learned");
  try {
    spec_of(bad);
    ADD_FAILURE() << "learned accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("learned"));
    EXPECT_THAT(e.what(), HasSubstr("rope or alibi"));
  }
}

TEST(Registry, UnknownArchitectureListsTheSupportedOnes) {
  const HfConfig config =
      HfConfig::from_json({{"architectures", {"FooForCausalLM"}}, {"model_type", "llama"}}, "/m/config.json");
  try {
    Registry::builtin().find(config);
    ADD_FAILURE() << "FooForCausalLM accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_THAT(message, HasSubstr("/m/config.json"));
    EXPECT_THAT(message, HasSubstr("FooForCausalLM"));
    for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "InternLMForCausalLM",
                             "QWenLMHeadModel", "InternLM2ForCausalLM", "BaiChuanForCausalLM", "BaichuanForCausalLM"}) {
      EXPECT_THAT(message, HasSubstr(arch));
    }
  }
  const auto supported = Registry::builtin().supported_architectures();
  EXPECT_TRUE(std::is_sorted(supported.begin(), supported.end()));
  EXPECT_EQ(supported.size(), 17u);

  // No architectures and an unknown model_type: the message says what it saw.
  try {
    Registry::builtin().find(HfConfig::from_json({{"model_type", "gizmo"}}));
    ADD_FAILURE() << "gizmo accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("gizmo"));
  }
}

TEST(Registry, ArchitecturesWinOverModelType) {
  // model_type says llama, architectures says InternLM2: architectures decide.
  const HfConfig config = HfConfig::from_json({{"architectures", {"InternLM2ForCausalLM"}}, {"model_type", "llama"}});
  EXPECT_EQ(Registry::builtin().find(config).name(), "internlm2");
  const HfConfig by_type = HfConfig::from_json({{"model_type", "qwen"}});
  EXPECT_EQ(Registry::builtin().find(by_type).name(), "qwen");
}

TEST(Registry, LlamaSpecRejectsBadHeadCountsAndActivations) {
  auto json = read_json(kModels / "llama" / "config.json");
  json["num_key_value_heads"] = 3;  // 4 heads are not a multiple of 3
  EXPECT_THROW(spec_of(HfConfig::from_json(json)), Error);
  json = read_json(kModels / "llama" / "config.json");
  json["hidden_act"] = "relu2";
  try {
    spec_of(HfConfig::from_json(json));
    ADD_FAILURE() << "relu2 accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("hidden_act 'relu2' is not supported"));
  }
  json["hidden_act"] = "gelu";  // gated GELU (GeGLU) is a gated MLP with another activation
  EXPECT_EQ(spec_of(HfConfig::from_json(json)).activation, Activation::gelu);
}

}  // namespace
}  // namespace kiln::models
