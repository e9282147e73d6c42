// Registry choice and ModelSpec fields for the families that are not shaped
// like Llama: Falcon (7B and 40B styles), GPT-J, GPT-2 and GPTBigCode, Phi-2,
// Mixtral and ChatGLM2/3. Every expected value is read in the test from the
// fixture's config.json and the semantics of the HF class (or, for ChatGLM, the
// reference module) that produced the fixture: see
// shared/fixtures/make_fixtures.py and remote_refs.py.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "checkpoint/hf_config.h"
#include "core/error.h"
#include "models/registry.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
using checkpoint::HfConfig;
using json = nlohmann::json;
using ::testing::HasSubstr;

const fs::path kModels = fs::path(KILN_FIXTURES) / "models";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}
json config_json(const std::string& fixture) { return read_json(kModels / fixture / "config.json"); }

ModelSpec spec_of(const HfConfig& config) { return Registry::builtin().find(config).spec(config); }
ModelSpec fixture_spec(const std::string& fixture) { return spec_of(HfConfig::load(kModels / fixture)); }
ModelSpec spec_of(const json& config) { return spec_of(HfConfig::from_json(config)); }

int64_t integer(const json& config, const char* key) { return config.at(key).get<int64_t>(); }
double real(const json& config, const char* key) { return config.at(key).get<double>(); }

// Reading a spec from `config` throws kiln::Error naming the file and every one of `parts`.
void expect_refused(const json& config, std::initializer_list<const char*> parts) {
  const std::string file = "/fixture/config.json";
  try {
    spec_of(HfConfig::from_json(config, file));
    ADD_FAILURE() << "accepted: " << config.dump();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(file));
    for (const char* part : parts) EXPECT_THAT(e.what(), HasSubstr(part));
  }
}

// ---------------------------------------------------------------------------
// Adapter choice

struct Choice {
  const char* fixture;
  const char* adapter;
  const char* family;
};

const Choice kChoices[] = {
    {"mixtral", "mixtral", "mixtral"},
    {"falcon-7b-style", "falcon", "falcon"},
    {"falcon-40b-style", "falcon", "falcon"},
    {"gptj", "gptj", "gptj"},
    {"gpt2", "gpt2", "gpt2"},
    {"starcoder", "gpt2", "gpt_bigcode"},
    {"phi2", "phi", "phi"},
    {"chatglm2", "chatglm", "chatglm"},
    {"chatglm3-32k", "chatglm", "chatglm"},
};

// The first of several spellings present in `config` (HF configs of these
// families spell the sizes n_embd / hidden_size, n_layer / num_layers, ...).
int64_t first_of(const json& config, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (config.contains(k) && !config[k].is_null()) return config[k].get<int64_t>();
  }
  ADD_FAILURE() << "none of the keys present";
  return -1;
}

TEST(FamilySpecs, EachFixturePicksItsAdapterAndSizesFromItsConfig) {
  for (const Choice& c : kChoices) {
    SCOPED_TRACE(c.fixture);
    const json cfg = config_json(c.fixture);
    const HfConfig config = HfConfig::load(kModels / c.fixture);
    const Adapter& adapter = Registry::builtin().find(config);
    EXPECT_EQ(adapter.name(), c.adapter);
    const ModelSpec s = adapter.spec(config);
    EXPECT_EQ(s.family, c.family);
    EXPECT_EQ(s.hf_architecture, cfg["architectures"][0].get<std::string>());
    const int64_t hidden = first_of(cfg, {"hidden_size", "n_embd"});
    const int64_t heads = first_of(cfg, {"num_attention_heads", "n_head"});
    EXPECT_EQ(s.vocab_size, first_of(cfg, {"padded_vocab_size", "vocab_size"}));
    EXPECT_EQ(s.hidden_size, hidden);
    EXPECT_EQ(s.num_layers, first_of(cfg, {"num_hidden_layers", "n_layer", "num_layers"}));
    EXPECT_EQ(s.num_heads, heads);
    EXPECT_EQ(s.head_dim, hidden / heads);
    EXPECT_GT(s.num_kv_heads, 0);
    EXPECT_EQ(s.num_heads % s.num_kv_heads, 0);
  }
}

TEST(FamilySpecs, WithoutArchitecturesTheModelTypeChoosesTheSameAdapter) {
  for (const Choice& c : kChoices) {
    SCOPED_TRACE(c.fixture);
    json cfg = config_json(c.fixture);
    cfg.erase("architectures");
    const HfConfig config = HfConfig::from_json(cfg);
    EXPECT_EQ(Registry::builtin().find(config).name(), c.adapter);
    EXPECT_EQ(Registry::builtin().find(config).spec(config).family, c.family);
  }
}

TEST(FamilySpecs, OlderArchitectureNamesOfTheseFamilies) {
  // Falcon before it moved into transformers (remote code "RWForCausalLM"), and
  // ChatGLM's other published class name.
  auto adapter_for = [](const char* arch) {
    return Registry::builtin().find(HfConfig::from_json({{"architectures", {arch}}})).name();
  };
  EXPECT_EQ(adapter_for("RWForCausalLM"), "falcon");
  EXPECT_EQ(adapter_for("ChatGLMForConditionalGeneration"), "chatglm");
  EXPECT_EQ(Registry::builtin().find(HfConfig::from_json({{"model_type", "RefinedWeb"}})).name(), "falcon");
  EXPECT_EQ(Registry::builtin().find(HfConfig::from_json({{"model_type", "RefinedWebModel"}})).name(), "falcon");
}

// ---------------------------------------------------------------------------
// Falcon (transformers.FalconForCausalLM)

TEST(FamilySpecs, Falcon7bStyleIsMultiQueryWithOneSharedNorm) {
  const json cfg = config_json("falcon-7b-style");
  ASSERT_TRUE(cfg["multi_query"].get<bool>());
  ASSERT_FALSE(cfg["new_decoder_architecture"].get<bool>());
  ASSERT_TRUE(cfg["parallel_attn"].get<bool>());
  ASSERT_FALSE(cfg["bias"].get<bool>());
  // Present, but FalconAttention reads num_kv_heads only for the new architecture
  // or without multi_query: this model has one K/V head.
  ASSERT_EQ(integer(cfg, "num_kv_heads"), 4);

  const ModelSpec s = fixture_spec("falcon-7b-style");
  const int64_t hidden = integer(cfg, "hidden_size"), heads = integer(cfg, "num_attention_heads");
  const int64_t head_dim = hidden / heads;
  EXPECT_EQ(s.num_kv_heads, 1);
  EXPECT_EQ(s.head_dim, head_dim);
  EXPECT_EQ(s.qkv_rows(), hidden + 2 * head_dim);  // FalconAttention's qkv_out_dim for multi_query
  EXPECT_EQ(s.intermediate_size, integer(cfg, "ffn_hidden_size"));
  EXPECT_EQ(s.max_positions, integer(cfg, "max_position_embeddings"));
  // x += attn(ln(x)) + mlp(ln(x)) with the one input_layernorm.
  EXPECT_TRUE(s.parallel_block);
  EXPECT_FALSE(s.parallel_two_norms);
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "layer_norm_epsilon"));
  // activation "gelu": get_activation("gelu") is the exact (erf) GELU.
  EXPECT_EQ(s.activation, Activation::gelu);
  EXPECT_FALSE(s.gated_mlp);
  EXPECT_FALSE(s.qkv_bias);  // bias: false
  EXPECT_FALSE(s.out_bias);
  EXPECT_FALSE(s.mlp_bias);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.lm_head_bias);
  EXPECT_EQ(s.positions, PositionKind::rope);  // alibi: false
  EXPECT_EQ(s.rope.style, RopeStyle::neox);    // rotate_half
  EXPECT_EQ(s.rope.rotary_dim, head_dim);
  EXPECT_DOUBLE_EQ(s.rope.theta, real(cfg, "rope_theta"));
  EXPECT_EQ(s.rope.scaling, RopeScaling::none);
  EXPECT_EQ(s.num_experts, 0);
}

TEST(FamilySpecs, Falcon40bStyleHasGroupedKvHeadsAndTwoNorms) {
  const json cfg = config_json("falcon-40b-style");
  ASSERT_TRUE(cfg["new_decoder_architecture"].get<bool>());
  ASSERT_EQ(integer(cfg, "num_ln_in_parallel_attn"), 2);

  const ModelSpec s = fixture_spec("falcon-40b-style");
  const int64_t hidden = integer(cfg, "hidden_size"), heads = integer(cfg, "num_attention_heads");
  const int64_t kv = integer(cfg, "num_kv_heads"), head_dim = hidden / heads;
  ASSERT_EQ(kv, 2);
  EXPECT_EQ(s.num_kv_heads, kv);  // the new architecture reads num_kv_heads (and ignores multi_query: true)
  EXPECT_EQ(s.qkv_rows(), (2 * kv + heads) * head_dim);
  EXPECT_TRUE(s.parallel_block);
  EXPECT_TRUE(s.parallel_two_norms);  // ln_attn and ln_mlp
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_EQ(s.activation, Activation::gelu);
  EXPECT_FALSE(s.gated_mlp);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_EQ(s.positions, PositionKind::rope);
  EXPECT_EQ(s.rope.rotary_dim, head_dim);
  EXPECT_EQ(s.intermediate_size, integer(cfg, "ffn_hidden_size"));
}

TEST(FamilySpecs, FalconNormCountFollowsNumLnInParallelAttn) {
  json cfg = config_json("falcon-40b-style");
  // FalconDecoderLayer: None with the new architecture means 2.
  cfg["num_ln_in_parallel_attn"] = nullptr;
  EXPECT_TRUE(spec_of(cfg).parallel_two_norms);
  cfg.erase("num_ln_in_parallel_attn");
  EXPECT_TRUE(spec_of(cfg).parallel_two_norms);
  // 1: attention and MLP both read input_layernorm.
  cfg["num_ln_in_parallel_attn"] = 1;
  const ModelSpec one = spec_of(cfg);
  EXPECT_TRUE(one.parallel_block);
  EXPECT_FALSE(one.parallel_two_norms);
  EXPECT_EQ(one.num_kv_heads, integer(cfg, "num_kv_heads"));
}

TEST(FamilySpecs, FalconOriginalArchitectureVariants) {
  json cfg = config_json("falcon-7b-style");
  const int64_t heads = integer(cfg, "num_attention_heads");
  // multi_query false (Falcon-RW): every head has its own K and V (qkv 3 * hidden).
  cfg["multi_query"] = false;
  cfg["num_kv_heads"] = nullptr;
  EXPECT_EQ(spec_of(cfg).num_kv_heads, heads);
  EXPECT_EQ(spec_of(cfg).qkv_rows(), 3 * integer(cfg, "hidden_size"));
  // parallel_attn false: sequential, with post_attention_layernorm before the MLP.
  cfg = config_json("falcon-7b-style");
  cfg["parallel_attn"] = false;
  const ModelSpec seq = spec_of(cfg);
  EXPECT_FALSE(seq.parallel_block);
  EXPECT_FALSE(seq.parallel_two_norms);
  // bias true: query_key_value, dense and both MLP projections have biases.
  cfg = config_json("falcon-7b-style");
  cfg["bias"] = true;
  const ModelSpec biased = spec_of(cfg);
  EXPECT_TRUE(biased.qkv_bias);
  EXPECT_TRUE(biased.out_bias);
  EXPECT_TRUE(biased.mlp_bias);
  EXPECT_FALSE(biased.lm_head_bias);
}

TEST(FamilySpecs, FalconAlibiScalesTheBiasWithTheScores) {
  // FalconAttention with alibi: (q.k + alibi) * inv_norm_factor, inv_norm_factor = 1/sqrt(head_dim).
  for (const char* fixture : {"falcon-7b-style", "falcon-40b-style"}) {
    SCOPED_TRACE(fixture);
    HfConfig config = HfConfig::load(kModels / fixture);
    const ModelSpec rope = spec_of(config);
    EXPECT_DOUBLE_EQ(rope.alibi_scale, 1.0);
    config.apply_override("alibi=true");
    const ModelSpec s = spec_of(config);
    const json cfg = config_json(fixture);
    const double head_dim = double(integer(cfg, "hidden_size")) / double(integer(cfg, "num_attention_heads"));
    ASSERT_EQ(head_dim, 16.0);
    EXPECT_EQ(s.positions, PositionKind::alibi);
    EXPECT_DOUBLE_EQ(s.alibi_scale, 1.0 / std::sqrt(head_dim));
    EXPECT_DOUBLE_EQ(s.alibi_scale, 0.25);
    // Nothing else changes.
    EXPECT_EQ(s.num_kv_heads, rope.num_kv_heads);
    EXPECT_EQ(s.parallel_two_norms, rope.parallel_two_norms);
  }
}

// ---------------------------------------------------------------------------
// GPT-J (transformers.GPTJForCausalLM)

TEST(FamilySpecs, GptJ) {
  const json cfg = config_json("gptj");
  const ModelSpec s = fixture_spec("gptj");
  const int64_t hidden = integer(cfg, "n_embd"), heads = integer(cfg, "n_head");
  EXPECT_EQ(s.num_kv_heads, heads);
  EXPECT_EQ(s.head_dim, hidden / heads);
  EXPECT_EQ(s.intermediate_size, integer(cfg, "n_inner"));
  EXPECT_EQ(s.max_positions, integer(cfg, "n_positions"));
  // GPTJBlock: x += attn(ln_1(x)) + mlp(ln_1(x)).
  EXPECT_TRUE(s.parallel_block);
  EXPECT_FALSE(s.parallel_two_norms);
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "layer_norm_epsilon"));
  // Rotary on the first rotary_dim dims, rotate_every_two, base 10000.
  ASSERT_EQ(integer(cfg, "rotary_dim"), 8);
  EXPECT_EQ(s.positions, PositionKind::rope);
  EXPECT_EQ(s.rope.rotary_dim, integer(cfg, "rotary_dim"));
  EXPECT_EQ(s.rope.style, RopeStyle::interleaved);
  EXPECT_DOUBLE_EQ(s.rope.theta, 10000.0);
  // q/k/v/out_proj have no bias; fc_in and fc_out do; gelu_new is the tanh approximation.
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.out_bias);
  EXPECT_FALSE(s.gated_mlp);
  EXPECT_TRUE(s.mlp_bias);
  EXPECT_EQ(s.activation, Activation::gelu_tanh);
  EXPECT_FALSE(s.tied_embeddings);
  EXPECT_TRUE(s.lm_head_bias);
}

// ---------------------------------------------------------------------------
// GPT-2 (transformers.GPT2LMHeadModel) and GPTBigCode (GPTBigCodeForCausalLM)

TEST(FamilySpecs, Gpt2) {
  const json cfg = config_json("gpt2");
  const ModelSpec s = fixture_spec("gpt2");
  const int64_t hidden = integer(cfg, "n_embd"), heads = integer(cfg, "n_head");
  EXPECT_EQ(s.family, "gpt2");
  EXPECT_EQ(s.num_kv_heads, heads);
  EXPECT_EQ(s.head_dim, hidden / heads);
  EXPECT_EQ(s.qkv_rows(), 3 * hidden);  // c_attn: Conv1D(3 * n_embd, n_embd)
  EXPECT_EQ(s.intermediate_size, integer(cfg, "n_inner"));
  EXPECT_EQ(s.positions, PositionKind::learned);
  EXPECT_EQ(s.max_positions, integer(cfg, "n_positions"));  // wpe rows
  EXPECT_EQ(s.max_positions, 256);
  EXPECT_FALSE(s.parallel_block);
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "layer_norm_epsilon"));
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.out_bias);
  EXPECT_FALSE(s.gated_mlp);
  EXPECT_TRUE(s.mlp_bias);
  EXPECT_EQ(s.activation, Activation::gelu_tanh);  // gelu_new
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.lm_head_bias);

  // n_inner null: GPT2Block uses 4 * n_embd.
  json no_inner = cfg;
  no_inner["n_inner"] = nullptr;
  EXPECT_EQ(spec_of(no_inner).intermediate_size, 4 * hidden);
}

TEST(FamilySpecs, StarCoderIsGptBigCodeWithOneKvHead) {
  const json cfg = config_json("starcoder");
  ASSERT_TRUE(cfg["multi_query"].get<bool>());
  const ModelSpec s = fixture_spec("starcoder");
  const int64_t hidden = integer(cfg, "n_embd"), heads = integer(cfg, "n_head");
  const int64_t head_dim = hidden / heads;
  EXPECT_EQ(s.family, "gpt_bigcode");
  EXPECT_EQ(s.num_kv_heads, 1);
  EXPECT_EQ(s.qkv_rows(), hidden + 2 * head_dim);  // c_attn: Linear(n_embd, n_embd + 2 * kv_dim)
  EXPECT_EQ(s.positions, PositionKind::learned);
  EXPECT_EQ(s.max_positions, integer(cfg, "n_positions"));
  EXPECT_EQ(s.intermediate_size, integer(cfg, "n_inner"));
  EXPECT_FALSE(s.parallel_block);
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.out_bias);
  EXPECT_TRUE(s.mlp_bias);
  EXPECT_EQ(s.activation, Activation::gelu_tanh);  // gelu_pytorch_tanh
  EXPECT_TRUE(s.tied_embeddings);
}

TEST(FamilySpecs, StarCoderWithoutMultiQueryHasAKvHeadPerHead) {
  // GPTBigCodeAttention: kv_heads = 1 if multi_query else num_heads; it does not
  // read num_key_value_heads (GPTBigCodeConfig derives that from multi_query too).
  // The fixture's config.json carries "num_key_value_heads": 1, as transformers
  // saved it for the multi-query model; overriding multi_query alone (as
  // `kiln build --hf-override multi_query=false` does) must give MHA.
  HfConfig config = HfConfig::load(kModels / "starcoder");
  ASSERT_EQ(config.raw()["num_key_value_heads"].get<int64_t>(), 1);
  config.apply_override("multi_query=false");
  const ModelSpec s = spec_of(config);
  EXPECT_EQ(s.family, "gpt_bigcode");
  EXPECT_EQ(s.num_kv_heads, s.num_heads);
  EXPECT_EQ(s.qkv_rows(), 3 * s.hidden_size);  // c_attn: Linear(n_embd, 3 * n_embd)
}

TEST(FamilySpecs, StarCoderWithoutMultiQueryAndConsistentConfig) {
  // The same, with num_key_value_heads as GPTBigCodeConfig(multi_query=False) saves it.
  json cfg = config_json("starcoder");
  cfg["multi_query"] = false;
  cfg["num_key_value_heads"] = cfg["n_head"];
  const ModelSpec s = spec_of(cfg);
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "n_head"));
  EXPECT_EQ(s.qkv_rows(), 3 * integer(cfg, "n_embd"));
}

// ---------------------------------------------------------------------------
// Phi-2 (transformers.PhiForCausalLM)

TEST(FamilySpecs, Phi2) {
  const json cfg = config_json("phi2");
  const ModelSpec s = fixture_spec("phi2");
  const int64_t hidden = integer(cfg, "hidden_size"), heads = integer(cfg, "num_attention_heads");
  const int64_t head_dim = hidden / heads;
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "num_key_value_heads"));
  EXPECT_EQ(s.head_dim, head_dim);
  EXPECT_EQ(s.intermediate_size, integer(cfg, "intermediate_size"));
  EXPECT_EQ(s.max_positions, integer(cfg, "max_position_embeddings"));
  // PhiAttention: rotary_ndims = int(head_dim * partial_rotary_factor), rotate_half.
  ASSERT_DOUBLE_EQ(real(cfg, "partial_rotary_factor"), 0.5);
  EXPECT_EQ(s.rope.rotary_dim, static_cast<int64_t>(double(head_dim) * real(cfg, "partial_rotary_factor")));
  EXPECT_EQ(s.rope.rotary_dim, 8);
  EXPECT_EQ(s.rope.style, RopeStyle::neox);
  EXPECT_DOUBLE_EQ(s.rope.theta, real(cfg, "rope_theta"));
  EXPECT_EQ(s.positions, PositionKind::rope);
  // PhiDecoderLayer: x += attn(ln(x)) + mlp(ln(x)).
  EXPECT_TRUE(s.parallel_block);
  EXPECT_FALSE(s.parallel_two_norms);
  EXPECT_EQ(s.norm, NormKind::layer);
  EXPECT_TRUE(s.norm_bias);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "layer_norm_eps"));
  // Every projection has a bias, the LM head too.
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_TRUE(s.out_bias);
  EXPECT_TRUE(s.mlp_bias);
  EXPECT_TRUE(s.lm_head_bias);
  EXPECT_FALSE(s.gated_mlp);
  EXPECT_EQ(s.activation, Activation::gelu_tanh);  // gelu_new
  EXPECT_FALSE(s.tied_embeddings);
}

// Found by config_spec_fuzz: a rotary fraction far out of range reached a float-to-int conversion (undefined),
// and a non-number in rope_parameters escaped as an nlohmann exception instead of a kiln::Error.
TEST(FamilySpecs, RotaryFractionsOutOfRangeAreRefused) {
  json phi = config_json("phi2");
  phi["partial_rotary_factor"] = 1e300;
  EXPECT_THROW(spec_of(phi), Error);
  phi.erase("partial_rotary_factor");
  phi["rope_parameters"] = {{"partial_rotary_factor", "half"}};
  EXPECT_THROW(spec_of(phi), Error);
  json qwen = config_json("qwen-v1");
  qwen["rotary_pct"] = -1e300;
  EXPECT_THROW(spec_of(qwen), Error);
  json llama = config_json("llama");
  llama["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 1e300}};
  EXPECT_THROW(spec_of(llama), Error);
}

TEST(FamilySpecs, PhiPartialRotaryFactorInTransformers5RopeParameters) {
  // transformers 5 keeps partial_rotary_factor (and rope_theta) in rope_parameters.
  json cfg = config_json("phi2");
  cfg.erase("partial_rotary_factor");
  cfg.erase("rope_theta");
  cfg["dtype"] = cfg["torch_dtype"];
  cfg.erase("torch_dtype");
  cfg["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 25000.0}, {"partial_rotary_factor", 0.5}};
  const int64_t head_dim = integer(cfg, "hidden_size") / integer(cfg, "num_attention_heads");
  ModelSpec s = spec_of(cfg);
  EXPECT_EQ(s.rope.rotary_dim, head_dim / 2);
  EXPECT_DOUBLE_EQ(s.rope.theta, 25000.0);
  EXPECT_EQ(s.rope.scaling, RopeScaling::none);
  // A factor other than the fixture's: int(16 * 0.25) = 4.
  cfg["rope_parameters"]["partial_rotary_factor"] = 0.25;
  s = spec_of(cfg);
  EXPECT_EQ(s.rope.rotary_dim, static_cast<int64_t>(double(head_dim) * 0.25));
  EXPECT_EQ(s.rope.rotary_dim, 4);
  // 4.x style, top level, with the real Phi-2 factor: int(16 * 0.4) = 6 (truncated as int() does).
  json v4 = config_json("phi2");
  v4["partial_rotary_factor"] = 0.4;
  EXPECT_EQ(spec_of(v4).rope.rotary_dim, static_cast<int64_t>(double(head_dim) * 0.4));
  EXPECT_EQ(spec_of(v4).rope.rotary_dim, 6);
}

TEST(FamilySpecs, PhiWithoutPartialRotaryFactorUsesTheConfigClassDefault) {
  // PhiConfig's default partial_rotary_factor is 0.5 (4.x: the __init__ default;
  // 5.x: kwargs.setdefault("partial_rotary_factor", 0.5) "for BC"), so a config
  // that omits it rotates half of each head, not all of it.
  json cfg = config_json("phi2");
  cfg.erase("partial_rotary_factor");
  const int64_t head_dim = integer(cfg, "hidden_size") / integer(cfg, "num_attention_heads");
  EXPECT_EQ(spec_of(cfg).rope.rotary_dim, head_dim / 2);
  // Likewise with transformers-5 rope_parameters that do not mention it.
  cfg.erase("rope_theta");
  cfg["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  EXPECT_EQ(spec_of(cfg).rope.rotary_dim, head_dim / 2);
}

// ---------------------------------------------------------------------------
// Mixtral (transformers.MixtralForCausalLM)

TEST(FamilySpecs, Mixtral) {
  const json cfg = config_json("mixtral");
  ASSERT_TRUE(cfg["head_dim"].is_null());
  ASSERT_TRUE(cfg["sliding_window"].is_null());
  const ModelSpec s = fixture_spec("mixtral");
  const int64_t hidden = integer(cfg, "hidden_size"), heads = integer(cfg, "num_attention_heads");
  EXPECT_EQ(s.num_experts, integer(cfg, "num_local_experts"));
  EXPECT_EQ(s.num_experts, 4);
  EXPECT_EQ(s.experts_per_token, integer(cfg, "num_experts_per_tok"));
  EXPECT_EQ(s.experts_per_token, 2);
  EXPECT_TRUE(s.moe_normalize_topk);      // MixtralSparseMoeBlock renormalizes the top-k weights
  EXPECT_EQ(s.head_dim, hidden / heads);  // head_dim null: hidden_size / num_attention_heads
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "num_key_value_heads"));
  EXPECT_EQ(s.intermediate_size, integer(cfg, "intermediate_size"));  // per expert
  EXPECT_EQ(s.sliding_window, 0);
  EXPECT_EQ(s.norm, NormKind::rms);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "rms_norm_eps"));
  EXPECT_TRUE(s.gated_mlp);
  EXPECT_EQ(s.activation, Activation::silu);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.out_bias);
  EXPECT_FALSE(s.mlp_bias);
  EXPECT_FALSE(s.parallel_block);
  EXPECT_EQ(s.rope.rotary_dim, hidden / heads);
  EXPECT_EQ(s.rope.style, RopeStyle::neox);
  EXPECT_DOUBLE_EQ(s.rope.theta, real(cfg, "rope_theta"));
  EXPECT_FALSE(s.tied_embeddings);

  // A window, when set, is read.
  json other = cfg;
  other["sliding_window"] = 8;
  EXPECT_EQ(spec_of(other).sliding_window, 8);
}

// ---------------------------------------------------------------------------
// ChatGLM2 / ChatGLM3 (remote_refs.ChatGLM, following modeling_chatglm.py)

TEST(FamilySpecs, ChatGLM2) {
  const json cfg = config_json("chatglm2");
  const ModelSpec s = fixture_spec("chatglm2");
  const int64_t heads = integer(cfg, "num_attention_heads"), head_dim = integer(cfg, "kv_channels");
  ASSERT_TRUE(cfg["multi_query_attention"].get<bool>());
  EXPECT_EQ(s.num_heads, heads);
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "multi_query_group_num"));
  EXPECT_EQ(s.num_kv_heads, 2);
  EXPECT_EQ(s.head_dim, head_dim);
  EXPECT_EQ(s.qkv_rows(), (heads + 2 * integer(cfg, "multi_query_group_num")) * head_dim);
  EXPECT_EQ(s.vocab_size, integer(cfg, "padded_vocab_size"));
  EXPECT_EQ(s.intermediate_size, integer(cfg, "ffn_hidden_size"));
  EXPECT_EQ(s.max_positions, integer(cfg, "seq_length"));
  EXPECT_EQ(s.num_layers, integer(cfg, "num_layers"));
  EXPECT_EQ(s.norm, NormKind::rms);
  EXPECT_DOUBLE_EQ(s.norm_eps, real(cfg, "layernorm_epsilon"));
  // RotaryEmbedding(kv_channels // 2): the first half of each head, in pairs (x[2i], x[2i+1]).
  EXPECT_EQ(s.rope.rotary_dim, head_dim / 2);
  EXPECT_EQ(s.rope.rotary_dim, 8);
  EXPECT_EQ(s.rope.style, RopeStyle::interleaved);
  EXPECT_DOUBLE_EQ(s.rope.theta, 10000.0);  // no rope_ratio
  EXPECT_EQ(s.positions, PositionKind::rope);
  // add_qkv_bias true, add_bias_linear false; SwiGLU packed [gate; up].
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_FALSE(s.out_bias);
  EXPECT_FALSE(s.mlp_bias);
  EXPECT_TRUE(s.gated_mlp);
  EXPECT_EQ(s.activation, Activation::silu);
  EXPECT_FALSE(s.parallel_block);
  EXPECT_FALSE(s.tied_embeddings);
  EXPECT_FALSE(s.lm_head_bias);
}

TEST(FamilySpecs, ChatGLM3RopeRatioScalesTheBase) {
  const json cfg = config_json("chatglm3-32k");
  const ModelSpec s = fixture_spec("chatglm3-32k");
  // base = 10000 * rope_ratio
  EXPECT_DOUBLE_EQ(s.rope.theta, 10000.0 * real(cfg, "rope_ratio"));
  EXPECT_DOUBLE_EQ(s.rope.theta, 160000.0);
  EXPECT_TRUE(s.qkv_bias);
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "multi_query_group_num"));
  EXPECT_EQ(s.rope.rotary_dim, integer(cfg, "kv_channels") / 2);
  EXPECT_EQ(s.rope.style, RopeStyle::interleaved);
}

TEST(FamilySpecs, ChatGLMWithoutMultiQueryOrQkvBias) {
  json cfg = config_json("chatglm2");
  cfg["multi_query_attention"] = false;
  cfg["add_qkv_bias"] = false;
  const ModelSpec s = spec_of(cfg);
  EXPECT_EQ(s.num_kv_heads, integer(cfg, "num_attention_heads"));
  EXPECT_FALSE(s.qkv_bias);
}

// ---------------------------------------------------------------------------
// Variants kiln does not implement are refused, naming the file and the key.

TEST(FamilySpecs, UnsupportedVariantsAreRefused) {
  json cfg = config_json("chatglm2");
  cfg["add_bias_linear"] = true;
  expect_refused(cfg, {"add_bias_linear", "not supported"});
  cfg = config_json("chatglm2");
  cfg["rmsnorm"] = false;
  expect_refused(cfg, {"LayerNorm", "not supported"});
  cfg = config_json("chatglm2");
  cfg["post_layer_norm"] = false;
  expect_refused(cfg, {"post_layer_norm", "not supported"});
  cfg = config_json("chatglm2");
  cfg["apply_residual_connection_post_layernorm"] = true;
  expect_refused(cfg, {"apply_residual_connection_post_layernorm", "not supported"});

  cfg = config_json("phi2");
  cfg["qk_layernorm"] = true;
  expect_refused(cfg, {"qk_layernorm", "not supported"});

  cfg = config_json("gpt2");
  cfg["scale_attn_by_inverse_layer_idx"] = true;
  expect_refused(cfg, {"scale_attn_by_inverse_layer_idx", "not supported"});

  // An activation no kernel implements.
  cfg = config_json("falcon-7b-style");
  cfg["activation"] = "relu";
  expect_refused(cfg, {"activation", "relu", "not supported"});
}

TEST(FamilySpecs, UnscaledAttentionIsRefused) {
  // GPT2Attention / GPTBigCodeAttention divide the scores by sqrt(head_dim) only
  // when scale_attn_weights; kiln always scales, so false must be refused.
  for (const char* fixture : {"gpt2", "starcoder"}) {
    SCOPED_TRACE(fixture);
    json cfg = config_json(fixture);
    ASSERT_TRUE(cfg["scale_attn_weights"].get<bool>());
    cfg["scale_attn_weights"] = false;
    expect_refused(cfg, {"scale_attn_weights"});
  }
}

}  // namespace
}  // namespace kiln::models
