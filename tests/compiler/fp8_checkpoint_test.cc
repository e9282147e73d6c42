// Pre-quantized FP8 checkpoints (tests/checkpoint/data/llama-fp8-*, made by
// PyTorch on the GPU machine with tests/checkpoint/make_fp8_checkpoints.py):
// kiln builds an fp8 engine from them without re-quantizing, the E4M3 bytes
// of each projection copied as stored (q, k and v fused into qkv, gate and up
// into gate_up) and each canonical row taking its checkpoint row's scale, per
// channel (compressed-tensors) or per tensor (quant_method fp8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

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

const fs::path kData = fs::path(KILN_SOURCE_DIR) / "tests" / "checkpoint" / "data";

class Fp8Checkpoint : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "kiln-fp8ckpt-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

// Rows [first, first + count) of a 2-D checkpoint tensor's bytes.
std::vector<uint8_t> rows_of(const TensorView& v, int64_t first, int64_t count) {
  const int64_t cols = v.shape.at(1);
  const auto* p = static_cast<const uint8_t*>(v.data) + first * cols;
  return {p, p + count * cols};
}

std::vector<float> scales_of(const checkpoint::WeightSet& w, const std::string& name, int64_t rows) {
  const FloatTensor f = to_float(w.get(name + "_scale"));
  if (f.numel() == 1) return std::vector<float>(static_cast<std::size_t>(rows), f.values[0]);
  return f.values;
}

TEST_P(Fp8Checkpoint, BuildsWithoutRequantizing) {
  const fs::path model = kData / GetParam();
  BuildOptions o;
  o.model = model;
  o.output = dir_ / "engine";
  o.target = engine::Target{"cuda", "sm_90"};  // no --quantize: the checkpoint says
  const BuildReport report = build_engine(o);
  EXPECT_TRUE(report.unused_checkpoint_tensors.empty()) << report.unused_checkpoint_tensors.front();
  const engine::Engine e = engine::Engine::open(o.output, o.target);
  EXPECT_EQ(e.manifest().quantization, engine::Quantization::fp8);
  const auto w = checkpoint::WeightSet::open(model);
  const std::string p = "model.layers.1.";
  // qkv: q (64 rows), k (32), v (32) one after another.
  std::vector<uint8_t> want;
  std::vector<float> want_scale;
  for (const char* part : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}) {
    const TensorView v = w.get(p + part);
    const auto bytes = rows_of(v, 0, v.shape[0]);
    want.insert(want.end(), bytes.begin(), bytes.end());
    const auto s = scales_of(w, p + part, v.shape[0]);
    want_scale.insert(want_scale.end(), s.begin(), s.end());
  }
  const TensorView qkv = e.tensor(0, "layers.1.attn.qkv.weight");
  ASSERT_EQ(qkv.dtype, DType::f8e4m3);
  ASSERT_EQ(static_cast<std::size_t>(qkv.numel()), want.size());
  EXPECT_EQ(std::memcmp(qkv.data, want.data(), want.size()), 0);
  const TensorView scale = e.tensor(0, "layers.1.attn.qkv.weight_scale");
  ASSERT_EQ(static_cast<std::size_t>(scale.numel()), want_scale.size());
  EXPECT_EQ(std::memcmp(scale.data, want_scale.data(), want_scale.size() * 4), 0);
  // down, as stored.
  const TensorView down = w.get(p + "mlp.down_proj.weight");
  const TensorView got = e.tensor(0, "layers.1.mlp.down.weight");
  EXPECT_EQ(std::memcmp(got.data, down.data, static_cast<std::size_t>(down.numel())), 0);
  EXPECT_EQ(e.tensor(0, "embed.weight").dtype, DType::bf16);
}

INSTANTIATE_TEST_SUITE_P(Layouts, Fp8Checkpoint, ::testing::Values("llama-fp8-channel", "llama-fp8-tensor"));

}  // namespace
}  // namespace kiln::compiler
