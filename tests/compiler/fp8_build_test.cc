// kiln build --quantize fp8 against PyTorch's quantization of the same
// weights (tests/compiler/data/llama_fp8_reference.json, made on the GPU
// machine by tests/compiler/make_fp8_reference.py): per output channel
// scale = max |row| / 448, weights (w / scale) cast to float8_e4m3fn, byte for
// byte; and where fp8 engines are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "core/error.h"
#include "engine/engine_reader.h"

namespace kiln::compiler {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Fp8Build : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "kiln-fp8-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  BuildOptions options(const std::string& target_arch, int tp = 1) const {
    BuildOptions o;
    o.model = fs::path(KILN_FIXTURES) / "models" / "llama";
    o.output = dir_ / "engine";
    o.target = engine::Target{"cuda", target_arch};
    o.quantization = engine::Quantization::fp8;
    o.tensor_parallel = tp;
    return o;
  }
  fs::path dir_;
};

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

TEST_F(Fp8Build, ProjectionsMatchPyTorchsQuantizationByteForByte) {
  build_engine(options("sm_90"));
  const engine::Engine e = engine::Engine::open(dir_ / "engine", engine::Target{"cuda", "sm_90"});
  EXPECT_EQ(e.manifest().quantization, engine::Quantization::fp8);
  EXPECT_EQ(e.manifest().dtype, DType::bf16);  // an fp32 checkpoint's fp8 engine keeps the rest in bf16
  std::ifstream in(std::string(KILN_SOURCE_DIR) + "/tests/compiler/data/llama_fp8_reference.json");
  const auto ref = nlohmann::json::parse(in);
  const std::map<std::string, std::string> names = {
      {"model.layers.0.mlp.down_proj.weight", "layers.0.mlp.down.weight"},
      {"model.layers.1.self_attn.o_proj.weight", "layers.1.attn.out.weight"}};
  for (const auto& [hf, canonical] : names) {
    const auto& r = ref["tensors"][hf];
    const TensorView w = e.tensor(0, canonical);
    ASSERT_EQ(w.dtype, DType::f8e4m3) << canonical;
    ASSERT_EQ(w.shape, r["shape"].get<Shape>()) << canonical;
    const std::vector<uint8_t> want = from_hex(r["e4m3"].get<std::string>());
    const auto* got = static_cast<const uint8_t*>(w.data);
    int wrong = 0;
    for (std::size_t i = 0; i < want.size(); ++i) wrong += got[i] != want[i];
    EXPECT_EQ(wrong, 0) << canonical << ": " << wrong << " of " << want.size() << " bytes differ";
    const TensorView scale = e.tensor(0, canonical + "_scale");
    ASSERT_EQ(scale.dtype, DType::f32);
    const auto* s = static_cast<const float*>(scale.data);
    const auto want_scale = r["scale"].get<std::vector<float>>();
    ASSERT_EQ(static_cast<std::size_t>(scale.numel()), want_scale.size());
    for (std::size_t i = 0; i < want_scale.size(); ++i) EXPECT_EQ(s[i], want_scale[i]) << canonical << " row " << i;
  }
  // Not quantized: embeddings, the LM head, norms.
  EXPECT_EQ(e.tensor(0, "embed.weight").dtype, DType::bf16);
  EXPECT_EQ(e.tensor(0, "lm_head.weight").dtype, DType::bf16);
  EXPECT_EQ(e.tensor(0, "layers.0.attn_norm.weight").dtype, DType::f32);
}

TEST_F(Fp8Build, RowParallelScalesAreWholeOnEveryRank) {
  build_engine(options("sm_90", 2));
  const engine::Engine e = engine::Engine::open(dir_ / "engine", engine::Target{"cuda", "sm_90"});
  // down is split by its columns: each rank holds every output row, so every
  // rank needs every row's scale, computed over the whole row.
  for (int rank = 0; rank < 2; ++rank) {
    const TensorView scale = e.tensor(rank, "layers.0.mlp.down.weight_scale");
    EXPECT_EQ(scale.shape, Shape{64}) << rank;
  }
  const auto* a = static_cast<const float*>(e.tensor(0, "layers.0.mlp.down.weight_scale").data);
  const auto* b = static_cast<const float*>(e.tensor(1, "layers.0.mlp.down.weight_scale").data);
  EXPECT_EQ(std::memcmp(a, b, 64 * sizeof(float)), 0);
  // gate_up is split by rows: each rank holds its rows' scales.
  EXPECT_EQ(e.tensor(0, "layers.0.mlp.gate_up.weight_scale").shape, Shape{160});
}

TEST_F(Fp8Build, RefusedWithoutFp8TensorCores) {
  auto cpu = options("sm_90");
  cpu.target = engine::Target{"cpu", "x86-64"};
  try {
    build_engine(cpu);
    FAIL() << "built an fp8 engine for the CPU";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("builds for NVIDIA GPUs with FP8 tensor cores (--target cuda"));
  }
  try {
    build_engine(options("sm_80"));
    FAIL() << "built an fp8 engine for sm_80";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("needs FP8 tensor cores (sm_89 or later"));
  }
  auto fp32 = options("sm_90");
  fp32.dtype = DType::f32;
  EXPECT_THROW(build_engine(fp32), Error);
  EXPECT_FALSE(fs::exists(dir_ / "engine"));
}

}  // namespace
}  // namespace kiln::compiler
