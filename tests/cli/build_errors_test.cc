// kiln build on bad input: a clear message naming what is wrong and where, a
// non-zero exit, and no engine directory left behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"
#include "runtime/backend_factory.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;

// A complete tiny Llama checkpoint (hidden 8, 2 heads, 1 layer, ffn 16, vocab 16).
nlohmann::json tiny_llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 8},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 2},
          {"num_hidden_layers", 1},
          {"intermediate_size", 16},
          {"vocab_size", 16},
          {"rms_norm_eps", 1e-5},
          {"max_position_embeddings", 64}};
}

std::map<std::string, RawTensor> tiny_llama_tensors() {
  std::map<std::string, RawTensor> t;
  t["model.embed_tokens.weight"] = f32_tensor({16, 8}, 0.1f);
  t["model.norm.weight"] = f32_tensor({8}, 1.f);
  t["lm_head.weight"] = f32_tensor({16, 8}, 0.1f);
  const std::string p = "model.layers.0.";
  for (const char* n : {"q", "k", "v", "o"}) t[p + "self_attn." + n + "_proj.weight"] = f32_tensor({8, 8}, 0.1f);
  t[p + "mlp.gate_proj.weight"] = f32_tensor({16, 8}, 0.1f);
  t[p + "mlp.up_proj.weight"] = f32_tensor({16, 8}, 0.1f);
  t[p + "mlp.down_proj.weight"] = f32_tensor({8, 16}, 0.1f);
  t[p + "input_layernorm.weight"] = f32_tensor({8}, 1.f);
  t[p + "post_attention_layernorm.weight"] = f32_tensor({8}, 1.f);
  return t;
}

class BuildErrors : public ::testing::Test {
 protected:
  fs::path model() const { return dir.path() / "model"; }
  fs::path engine() const { return dir.path() / "engine"; }
  void make_checkpoint(const nlohmann::json& config, const std::map<std::string, RawTensor>& tensors) {
    fs::create_directories(model());
    write_text(model() / "config.json", config.dump());
    write_safetensors(model() / "model.safetensors", tensors);
  }
  RunResult build(const std::string& extra = "") {
    return run_kiln("build --model " + model().string() + " --output " + engine().string() + " " + extra);
  }
  // Asserts failure with `message`, and that no engine (nor its temporary) is left.
  void expect_refused(const RunResult& r, const std::string& message) {
    EXPECT_NE(r.status, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(message));
    EXPECT_FALSE(fs::exists(engine())) << "an engine directory was left behind";
    for (const auto& e : fs::directory_iterator(dir.path())) {
      EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp-"))) << "temporary left behind";
    }
  }
  TempDir dir;
};

TEST_F(BuildErrors, TinyCheckpointBuilds) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto r = build();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(engine() / "engine.json"));
  EXPECT_TRUE(fs::exists(engine() / "rank0.bin"));
}

// An engine for a named GPU architecture builds anywhere and records it; it
// runs only on that GPU (here, without one, it is refused naming the target).
TEST_F(BuildErrors, NamedCudaArchitectureBuildsWithoutTheGpu) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto r = build("--target cuda:sm_90");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto manifest = read_json(engine() / "engine.json");
  EXPECT_EQ(manifest.at("target").at("backend"), "cuda");
  EXPECT_EQ(manifest.at("target").at("arch"), "sm_90");
  // An fp32 engine's products are cublasSgemm: nothing to measure, and it says so.
  const auto& gemm = manifest.at("kernel_choices").at("gemm");
  EXPECT_EQ(gemm.at("tuned"), false);
  EXPECT_THAT(gemm.at("reason").get<std::string>(), HasSubstr("cublasSgemm"));
  if (runtime::resolve_target("auto") == engine::Target{"cuda", "sm_90"}) return;  // it would run here
  const auto g = run_kiln("generate --engine " + engine().string() + " --input-ids 1,2");
  EXPECT_NE(g.status, 0);
  EXPECT_THAT(g.output, HasSubstr("was built for cuda sm_90"));
}

// A 16-bit engine for a GPU this machine lacks records its GEMMs untuned, and why.
TEST_F(BuildErrors, CudaEngineBuiltWithoutItsGpuIsUntuned) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto r = build("--target cuda:sm_80 --dtype fp16 --max-batch-size 16 --max-num-tokens 64");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto gemm = read_json(engine() / "engine.json").at("kernel_choices").at("gemm");
  EXPECT_EQ(gemm.at("dtype"), "fp16");
  EXPECT_EQ(gemm.at("arch"), "sm_80");
  EXPECT_FALSE(gemm.at("problems").empty());
  if (runtime::resolve_target("auto") != engine::Target{"cuda", "sm_80"}) {
    EXPECT_EQ(gemm.at("tuned"), false);
    EXPECT_FALSE(gemm.at("reason").get<std::string>().empty());
  }
  // --tune off: never measured, whatever the machine.
  const auto off = build("--target cuda:sm_80 --dtype fp16 --tune off --force");
  ASSERT_EQ(off.status, 0) << off.output;
  const auto off_gemm = read_json(engine() / "engine.json").at("kernel_choices").at("gemm");
  EXPECT_EQ(off_gemm.at("tuned"), false);
  EXPECT_EQ(off_gemm.at("reason"), "--tune off");
  EXPECT_THAT(run_kiln("inspect " + engine().string()).output,
              HasSubstr("gemms         cuBLASLt's heuristic (not measured: --tune off)"));
}

TEST_F(BuildErrors, CpuEnginesHaveNoKernelChoices) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto r = build("--target cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_json(engine() / "engine.json").at("kernel_choices"), nlohmann::json::object());
}

TEST_F(BuildErrors, MalformedTuneRefused) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto r = build("--tune maybe");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("--tune"));
}

TEST_F(BuildErrors, QuantizationRefusedWhereItCannotRun) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  expect_refused(build("--quantize int3"), "--quantize int3: kiln builds fp8");
  expect_refused(build("--quantize fp8 --target cpu"), "the cpu target runs unquantized engines only");
  expect_refused(build("--quantize fp8 --target cuda:sm_86"), "needs FP8 tensor cores (sm_89 or later");
  // Where it can: an sm_90 engine, built here without the GPU, says so.
  const auto r = build("--quantize fp8 --target cuda:sm_90 --tune off");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto inspect = run_kiln("inspect --check " + engine().string());
  EXPECT_THAT(inspect.output, HasSubstr("quantization  fp8: attention and MLP projections in E4M3"));
  EXPECT_THAT(inspect.output, HasSubstr("checksums     ok"));
}

TEST_F(BuildErrors, Fp8KvCacheRefusedWhereItCannotRun) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  expect_refused(build("--kv-cache-dtype int4"), "--kv-cache-dtype");
  expect_refused(build("--kv-cache-dtype fp8 --target cpu"), "runs on NVIDIA GPUs from sm_89");
  expect_refused(build("--kv-cache-dtype fp8 --target cuda:sm_80"), "the target is cuda sm_80");
  expect_refused(build("--kv-cache-dtype fp8 --target cuda:sm_90 --dtype fp32"), "not fp32");
  // Where it can: a bf16 engine (the default beside an FP8 cache) whose cache takes 1 byte a value.
  const auto r = build("--kv-cache-dtype fp8 --target cuda:sm_90 --tune off");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto inspect = run_kiln("inspect --check " + engine().string());
  EXPECT_THAT(inspect.output, HasSubstr("dtype         bf16"));
  EXPECT_THAT(inspect.output, HasSubstr("quantization  none"));
  EXPECT_THAT(inspect.output, HasSubstr("(fp8_e4m3: FP8, unscaled E4M3, all layers)"));
  EXPECT_THAT(inspect.output, HasSubstr("checksums     ok"));
  // An engine.json that claims an FP8 cache for the CPU is refused on reading.
  auto manifest = read_json(engine() / "engine.json");
  manifest["target"] = {{"backend", "cpu"}, {"arch", "x86_64"}};
  write_text(engine() / "engine.json", manifest.dump());
  const auto bad = run_kiln("inspect --check " + engine().string());
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, HasSubstr("kv_cache_dtype fp8_e4m3 is for the CUDA target from sm_89"));
}

TEST_F(BuildErrors, MalformedTargetRefused) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  expect_refused(build("--target cuda:ampere"), "expected cuda:sm_<major><minor>");
  expect_refused(build("--target tpu"), "--target 'tpu' is not a target");
}

TEST_F(BuildErrors, MissingConfig) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  fs::remove(model() / "config.json");
  expect_refused(build(), "config.json");
}

TEST_F(BuildErrors, MalformedConfig) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  write_text(model() / "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": ");
  expect_refused(build(), "config.json is not valid JSON");
}

TEST_F(BuildErrors, MissingConfigKey) {
  auto config = tiny_llama_config();
  config.erase("hidden_size");
  make_checkpoint(config, tiny_llama_tensors());
  expect_refused(build(), "'hidden_size' or 'n_embd' or 'n_embed' is missing");
}

TEST_F(BuildErrors, UnknownArchitectureListsSupported) {
  auto config = tiny_llama_config();
  config["architectures"] = {"TotallyNewForCausalLM"};
  make_checkpoint(config, tiny_llama_tensors());
  const auto r = build();
  expect_refused(r, "unknown architecture 'TotallyNewForCausalLM'");
  EXPECT_THAT(r.output, HasSubstr("LlamaForCausalLM"));
  EXPECT_THAT(r.output, HasSubstr("QWenLMHeadModel"));
}

TEST_F(BuildErrors, MissingTensor) {
  auto tensors = tiny_llama_tensors();
  tensors.erase("model.layers.0.mlp.up_proj.weight");
  make_checkpoint(tiny_llama_config(), tensors);
  expect_refused(build(), "no tensor 'model.layers.0.mlp.up_proj.weight'");
}

TEST_F(BuildErrors, WrongShape) {
  auto tensors = tiny_llama_tensors();
  tensors["model.layers.0.mlp.down_proj.weight"] = f32_tensor({8, 12}, 0.1f);
  make_checkpoint(tiny_llama_config(), tensors);
  const auto r = build();
  expect_refused(r, "'model.layers.0.mlp.down_proj.weight'");
  EXPECT_THAT(r.output, HasSubstr("[8, 12]"));
  EXPECT_THAT(r.output, HasSubstr("[8, 16]"));
}

TEST_F(BuildErrors, UnsupportedDtype) {
  auto tensors = tiny_llama_tensors();
  RawTensor ints{"I32", {8}, std::vector<char>(32)};
  tensors["model.norm.weight"] = ints;
  make_checkpoint(tiny_llama_config(), tensors);
  expect_refused(build(), "unsupported dtype int32");
}

TEST_F(BuildErrors, TruncatedSafetensors) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  const auto file = model() / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  expect_refused(build(), "model.safetensors");
}

TEST_F(BuildErrors, HeaderPastTheEnd) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  std::fstream f(model() / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  const uint64_t huge = 1ull << 40;
  f.write(reinterpret_cast<const char*>(&huge), 8);
  f.close();
  expect_refused(build(), "header past the end");
}

TEST_F(BuildErrors, BadDtypeOption) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  expect_refused(build("--dtype int3"), "dtype 'int3' is not a build dtype");
}

TEST_F(BuildErrors, TensorParallelMustDivideHeads) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  expect_refused(build("--tp 3"), "not divisible by the tensor-parallel degree 3");
}

TEST_F(BuildErrors, ExistingOutputRefusedUnlessForce) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  fs::create_directories(engine());
  write_text(engine() / "keep.txt", "user data");
  const auto r = build();
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("already exists; pass --force"));
  EXPECT_TRUE(fs::exists(engine() / "keep.txt")) << "refused build must not touch the existing directory";
  const auto forced = build("--force");
  ASSERT_EQ(forced.status, 0) << forced.output;
  EXPECT_TRUE(fs::exists(engine() / "engine.json"));
  EXPECT_FALSE(fs::exists(engine() / "keep.txt"));
}

TEST_F(BuildErrors, FailedForceBuildKeepsOldEngine) {
  make_checkpoint(tiny_llama_config(), tiny_llama_tensors());
  ASSERT_EQ(build().status, 0);
  auto tensors = tiny_llama_tensors();
  tensors.erase("lm_head.weight");
  write_safetensors(model() / "model.safetensors", tensors);
  const auto r = build("--force");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("lm_head.weight"));
  EXPECT_TRUE(fs::exists(engine() / "engine.json")) << "the previous engine must survive a failed rebuild";
}

}  // namespace
}  // namespace kiln::test
