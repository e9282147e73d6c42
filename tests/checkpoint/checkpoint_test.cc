#include "checkpoint/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "checkpoint_test_support.h"
#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::kModels;
using testing::PickleWriter;
using testing::safetensors_bytes;
using testing::TempDir;
using testing::write_file;

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<std::string> sorted_keys(const nlohmann::json& object) {
  std::vector<std::string> out;
  for (const auto& [key, value] : object.items()) out.push_back(key);
  std::sort(out.begin(), out.end());
  return out;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

std::string open_error(const std::filesystem::path& dir) {
  try {
    WeightSet::open(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A safetensors file of one-byte U8 tensors with the given names.
std::string u8_tensors(const std::vector<std::string>& names) {
  nlohmann::json header = nlohmann::json::object();
  for (std::size_t i = 0; i < names.size(); ++i) {
    header[names[i]] = {{"dtype", "U8"}, {"shape", {1}}, {"data_offsets", {i, i + 1}}};
  }
  return safetensors_bytes(header.dump(), std::string(names.size(), '\x05'));
}

TEST(WeightSet, OpensASingleSafetensorsFile) {
  const auto weights = WeightSet::open(kModels / "llama");
  EXPECT_EQ(weights.format(), "safetensors");
  EXPECT_EQ(weights.dir(), kModels / "llama");
  const auto names = weights.names();
  EXPECT_EQ(names.size(), 21u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_FALSE(weights.contains("logits_0"));  // reference.safetensors is not weights
  EXPECT_EQ(weights.file_of("lm_head.weight"), kModels / "llama" / "model.safetensors");
  EXPECT_EQ(weights.get("model.layers.0.self_attn.k_proj.weight").shape, (Shape{32, 64}));  // 2 kv heads of 16
}

TEST(WeightSet, OpensShardedSafetensorsThroughTheIndex) {
  const auto dir = kModels / "llama3-tied-bf16-sharded";
  const auto weight_map = read_json(dir / "model.safetensors.index.json")["weight_map"];
  const auto config = read_json(dir / "config.json");
  ASSERT_TRUE(config["tie_word_embeddings"].get<bool>());

  const auto weights = WeightSet::open(dir);
  EXPECT_EQ(weights.format(), "safetensors");
  EXPECT_EQ(weights.names(), sorted_keys(weight_map));
  EXPECT_FALSE(weights.contains("lm_head.weight"));  // tied to the embedding
  for (const std::string& name : weights.names()) {
    SCOPED_TRACE(name);
    const std::filesystem::path shard = dir / weight_map[name].get<std::string>();
    EXPECT_EQ(weights.file_of(name), shard);
    const TensorView view = weights.get(name);
    EXPECT_EQ(view.dtype, DType::bf16);
    // The same bytes reached through the shard itself.
    EXPECT_TRUE(same_bytes(view, SafetensorsFile::open(shard)->get(name)));
    for (float v : to_float(view).values) ASSERT_TRUE(std::isfinite(v));
  }
  EXPECT_EQ(weights.get("model.embed_tokens.weight").shape,
            (Shape{config["vocab_size"].get<int64_t>(), config["hidden_size"].get<int64_t>()}));
  EXPECT_EQ(weights.get("model.layers.1.mlp.down_proj.weight").shape,
            (Shape{config["hidden_size"].get<int64_t>(), config["intermediate_size"].get<int64_t>()}));
}

TEST(WeightSet, OpensShardedPytorchBinThroughTheIndex) {
  const auto dir = kModels / "llama-fp16-bin";
  const auto weight_map = read_json(dir / "pytorch_model.bin.index.json")["weight_map"];
  const auto weights = WeightSet::open(dir);
  EXPECT_EQ(weights.format(), "pytorch-bin");
  EXPECT_EQ(weights.names(), sorted_keys(weight_map));
  for (const std::string& name : weights.names()) {
    SCOPED_TRACE(name);
    const std::filesystem::path shard = dir / weight_map[name].get<std::string>();
    EXPECT_EQ(weights.file_of(name), shard);
    EXPECT_TRUE(same_bytes(weights.get(name), TorchBinFile::open(shard)->get(name)));
  }
  // MHA: 4 kv heads of 16.
  EXPECT_EQ(weights.get("model.layers.1.self_attn.v_proj.weight").shape, (Shape{64, 64}));
  EXPECT_EQ(weights.get("model.norm.weight").dtype, DType::f16);
}

TEST(WeightSet, OpensASinglePytorchBin) {
  TempDir dir;
  const std::vector<float> values = {0.5f, 1.5f};
  const std::string pickle =
      PickleWriter().proto(2).op('}').unicode("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s').stop().bytes();
  write_file(dir / "pytorch_model.bin",
             testing::torch_archive("pytorch_model", pickle, {{"0", testing::raw_bytes(values)}}));
  const auto weights = WeightSet::open(dir.path());
  EXPECT_EQ(weights.format(), "pytorch-bin");
  EXPECT_EQ(weights.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(to_float(weights.get("w")).values, values);
}

TEST(WeightSet, FallsBackToEverySafetensorsFile) {
  TempDir dir;
  write_file(dir / "b.safetensors", u8_tensors({"x", "y"}));
  write_file(dir / "a.safetensors", u8_tensors({"z"}));
  const auto weights = WeightSet::open(dir.path());
  EXPECT_EQ(weights.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(weights.file_of("z"), dir / "a.safetensors");
  EXPECT_EQ(weights.file_of("x"), dir / "b.safetensors");
}

TEST(WeightSet, PrefersStandardNamesOverOtherSafetensorsFiles) {
  TempDir dir;
  write_file(dir / "model.safetensors", u8_tensors({"w"}));
  write_file(dir / "other.safetensors", u8_tensors({"w"}));  // would clash if it were read
  EXPECT_EQ(WeightSet::open(dir.path()).names(), std::vector<std::string>{"w"});
}

TEST(WeightSet, RejectsATensorInTwoFilesNamingBoth) {
  TempDir dir;
  write_file(dir / "a.safetensors", u8_tensors({"shared", "a"}));
  write_file(dir / "b.safetensors", u8_tensors({"shared"}));
  const std::string message = open_error(dir.path());
  EXPECT_THAT(message, HasSubstr("tensor 'shared' appears in two files"));
  EXPECT_THAT(message, HasSubstr("a.safetensors and "));
  EXPECT_THAT(message, HasSubstr("b.safetensors"));
}

TEST(WeightSet, RejectsAnIndexNamingAMissingShard) {
  TempDir dir;
  write_file(dir / "model-1.safetensors", u8_tensors({"a"}));
  write_file(dir / "model.safetensors.index.json",
             R"({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})");
  const std::string message = open_error(dir.path());
  EXPECT_THAT(message, HasSubstr("model.safetensors.index.json maps tensor 'b' to shard model-2.safetensors"));
  EXPECT_THAT(message, HasSubstr("which is missing"));
}

TEST(WeightSet, RejectsAnIndexNamingATensorItsShardLacks) {
  TempDir dir;
  write_file(dir / "model-1.safetensors", u8_tensors({"a"}));
  write_file(dir / "model.safetensors.index.json",
             R"({"weight_map": {"a": "model-1.safetensors", "ghost": "model-1.safetensors"}})");
  EXPECT_THAT(open_error(dir.path()), HasSubstr("model.safetensors.index.json maps tensor 'ghost' to shard "
                                                "model-1.safetensors, which does not contain it"));
}

TEST(WeightSet, RejectsAnIndexWithoutAWeightMap) {
  TempDir dir;
  write_file(dir / "pytorch_model.bin.index.json", R"({"metadata": {}})");
  EXPECT_THAT(open_error(dir.path()), HasSubstr("pytorch_model.bin.index.json has no weight_map"));
  write_file(dir / "pytorch_model.bin.index.json", "{not json");
  EXPECT_THAT(open_error(dir.path()), HasSubstr("pytorch_model.bin.index.json is not valid JSON"));
}

TEST(WeightSet, RejectsADirectoryWithoutWeights) {
  TempDir dir;
  write_file(dir / "config.json", "{}");
  const std::string message = open_error(dir.path());
  EXPECT_THAT(message, HasSubstr("no weights found in checkpoint directory " + dir.path().string()));
  EXPECT_THAT(message, HasSubstr("model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json, "
                                 "pytorch_model.bin and *.safetensors"));
  EXPECT_THAT(open_error(dir / "nowhere"), HasSubstr("does not exist"));
}

TEST(WeightSet, ReportsAnUnknownTensorWithItsClosestNames) {
  const auto weights = WeightSet::open(kModels / "llama");
  try {
    weights.get("model.layers.0.self_attn.qkv_proj.weight");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'model.layers.0.self_attn.qkv_proj.weight' not found in checkpoint " +
                                    (kModels / "llama").string() + " (21 tensors; closest: "));
    EXPECT_THAT(e.what(), HasSubstr("'model.layers.0.self_attn.q_proj.weight'"));
  }
  EXPECT_THROW(weights.file_of("nope"), Error);
}

}  // namespace
}  // namespace kiln::checkpoint
