// build_engine in process: what lands in the engine, rank by rank, against the
// checkpoint's own tensors split and rounded here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "compiler/compiler.h"
#include "core/error.h"
#include "engine/engine_reader.h"

namespace kiln::compiler {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kModels = fs::path(KILN_FIXTURES) / "models";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kiln-compiler-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

BuildOptions options(const std::string& fixture, const fs::path& output) {
  BuildOptions o;
  o.model = kModels / fixture;
  o.output = output;
  o.target = engine::Target{"cpu", "test"};
  return o;
}

std::vector<float> widen(const TensorView& v) {
  std::vector<float> out(static_cast<std::size_t>(v.numel()));
  convert_to_f32(v.dtype, v.data, out.data(), out.size());
  return out;
}

// The bf16 value nearest to x, ties to even, by comparing the two candidates in double.
float nearest_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint32_t down_bits = bits & 0xffff0000u, up_bits = down_bits + 0x10000u;
  float down, up;
  std::memcpy(&down, &down_bits, 4);
  std::memcpy(&up, &up_bits, 4);
  const double dd = std::fabs(double(x) - down), du = std::fabs(double(up) - x);
  if (dd < du) return down;
  if (du < dd) return up;
  return (down_bits & 0x10000u) == 0 ? down : up;
}

TEST(BuildEngine, Bf16TensorParallelEngineHoldsTheSplitRoundedCheckpoint) {
  TempDir tmp;
  BuildOptions o = options("llama", tmp.path() / "engine");
  o.dtype = DType::bf16;
  o.tensor_parallel = 2;
  const BuildReport report = build_engine(o);
  EXPECT_EQ(report.family, "llama");
  EXPECT_EQ(report.tensors, 3 + 2 * 6);
  EXPECT_TRUE(report.unused_checkpoint_tensors.empty());

  const engine::Engine e = engine::Engine::open(o.output, engine::Target{"cpu", "test"});
  e.verify_checksums();
  EXPECT_EQ(e.manifest().tensor_parallel, 2);
  EXPECT_EQ(e.manifest().dtype, DType::bf16);
  const auto weights = checkpoint::WeightSet::open(kModels / "llama");
  auto ckpt = [&](const std::string& name) { return to_float(weights.get(name)).values; };

  // q_proj [64, 64] (4 heads of 16), k/v [32, 64] (2 KV heads): rank r gets q heads 2r, 2r+1 and KV head r.
  const auto q = ckpt("model.layers.1.self_attn.q_proj.weight");
  const auto k = ckpt("model.layers.1.self_attn.k_proj.weight");
  const auto v = ckpt("model.layers.1.self_attn.v_proj.weight");
  const auto o_proj = ckpt("model.layers.1.self_attn.o_proj.weight");  // [64, 64]: columns split
  const auto norm = ckpt("model.layers.1.input_layernorm.weight");
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE(rank);
    const TensorView qkv = e.tensor(rank, "layers.1.attn.qkv.weight");
    ASSERT_EQ(qkv.dtype, DType::bf16);
    ASSERT_EQ(qkv.shape, (Shape{64, 64}));
    const auto got = widen(qkv);
    for (int64_t i = 0; i < 64; ++i) {
      const std::vector<float>* src = &q;
      int64_t src_row = rank * 32 + i;
      if (i >= 32) src = &k, src_row = rank * 16 + (i - 32);
      if (i >= 48) src = &v, src_row = rank * 16 + (i - 48);
      for (int64_t c = 0; c < 64; ++c) {
        ASSERT_EQ(got[i * 64 + c], nearest_bf16((*src)[src_row * 64 + c])) << "row " << i << " col " << c;
      }
    }
    const TensorView out = e.tensor(rank, "layers.1.attn.out.weight");
    ASSERT_EQ(out.shape, (Shape{64, 32}));
    const auto out_values = widen(out);
    for (int64_t r = 0; r < 64; ++r) {
      for (int64_t c = 0; c < 32; ++c) ASSERT_EQ(out_values[r * 32 + c], nearest_bf16(o_proj[r * 64 + rank * 32 + c]));
    }
    // Norm weights are replicated and stay fp32, exactly.
    const TensorView n = e.tensor(rank, "layers.1.attn_norm.weight");
    EXPECT_EQ(n.dtype, DType::f32);
    EXPECT_EQ(widen(n), norm);
  }
}

TEST(BuildEngine, DtypeDefaultsToTheCheckpointsStoredDtype) {
  // llama-fp16-bin's config has no torch_dtype; its weights are fp16, so the engine is fp16,
  // and so are HF's rotary frequencies.
  TempDir tmp;
  const BuildOptions o = options("llama-fp16-bin", tmp.path() / "engine");
  build_engine(o);
  const auto m = engine::Engine::read_manifest(o.output);
  EXPECT_EQ(m.dtype, DType::f16);
  EXPECT_EQ(m.spec.rope.frequency_dtype, DType::f16);
  EXPECT_EQ(m.limits.max_input_len, 256);  // the model's context
  EXPECT_EQ(m.limits.max_batch_size, 8);
  EXPECT_EQ(m.target, (engine::Target{"cpu", "test"}));
}

TEST(BuildEngine, CopiesGenerationConfigAndRecordsLimits) {
  TempDir tmp;
  BuildOptions o = options("llama", tmp.path() / "engine");
  o.max_batch_size = 3;
  o.max_input_len = 40;
  o.max_output_len = 20;
  o.max_num_tokens = 5;
  build_engine(o);
  EXPECT_TRUE(fs::exists(o.output / "tokenizer" / "generation_config.json"));
  const auto m = engine::Engine::read_manifest(o.output);
  EXPECT_EQ(m.limits.max_batch_size, 3);
  EXPECT_EQ(m.limits.max_input_len, 40);
  EXPECT_EQ(m.limits.max_output_len, 20);
  EXPECT_EQ(m.limits.max_num_tokens, 5);
  EXPECT_EQ(m.dtype, DType::f32);
  EXPECT_EQ(m.spec.family, "llama");
}

TEST(BuildEngine, FailuresLeaveNothingBehind) {
  TempDir tmp;
  BuildOptions o = options("llama", tmp.path() / "engine");
  o.tensor_parallel = 3;  // 4 heads
  EXPECT_THROW(build_engine(o), Error);
  o.tensor_parallel = 1;
  o.max_input_len = 257;  // beyond max_position_embeddings 256
  try {
    build_engine(o);
    ADD_FAILURE() << "max_input_len beyond the context accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("256"));
  }
  o.max_input_len.reset();
  o.hf_overrides = {"num_attention_heads=8", "num_key_value_heads=4"};  // shapes no longer match
  EXPECT_THROW(build_engine(o), Error);
  EXPECT_TRUE(fs::is_empty(tmp.path())) << "no engine and no temporary directory";
}

}  // namespace
}  // namespace kiln::compiler
