#include "checkpoint/safetensors_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "checkpoint_test_support.h"
#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::kModels;
using testing::safetensors_bytes;
using testing::TempDir;
using testing::write_file;

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<int32_t> int32_values(const TensorView& view) {
  const auto* p = static_cast<const int32_t*>(view.data);
  return std::vector<int32_t>(p, p + view.numel());
}

TEST(SafetensorsFile, ReadsFixtureWeightsWithTheConfigsShapes) {
  const auto config = read_json(kModels / "llama" / "config.json");
  const int64_t hidden = config["hidden_size"];
  const int64_t inter = config["intermediate_size"];
  const int64_t vocab = config["vocab_size"];
  const int64_t head_dim = config["head_dim"];
  const int64_t heads = config["num_attention_heads"];
  const int64_t kv_heads = config["num_key_value_heads"];
  const int64_t layers = config["num_hidden_layers"];
  ASSERT_EQ(hidden, 64);
  ASSERT_EQ(inter, 160);
  ASSERT_EQ(vocab, 384);
  ASSERT_LT(kv_heads, heads);  // the fixture exercises GQA

  const auto file = SafetensorsFile::open(kModels / "llama" / "model.safetensors");
  const std::vector<std::string> names = file->names();
  EXPECT_EQ(names.size(), static_cast<std::size_t>(3 + 9 * layers));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(file->metadata().value("format", ""), "pt");

  const std::map<std::string, Shape> expected = {
      {"model.embed_tokens.weight", {vocab, hidden}},
      {"lm_head.weight", {vocab, hidden}},
      {"model.norm.weight", {hidden}},
      {"model.layers.1.self_attn.q_proj.weight", {heads * head_dim, hidden}},
      {"model.layers.1.self_attn.k_proj.weight", {kv_heads * head_dim, hidden}},
      {"model.layers.1.self_attn.v_proj.weight", {kv_heads * head_dim, hidden}},
      {"model.layers.1.self_attn.o_proj.weight", {hidden, heads * head_dim}},
      {"model.layers.0.mlp.gate_proj.weight", {inter, hidden}},
      {"model.layers.0.mlp.up_proj.weight", {inter, hidden}},
      {"model.layers.0.mlp.down_proj.weight", {hidden, inter}},
      {"model.layers.0.input_layernorm.weight", {hidden}},
  };
  for (const auto& [name, shape] : expected) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file->contains(name));
    const TensorView view = file->get(name);
    EXPECT_EQ(view.dtype, DType::f32);
    EXPECT_EQ(view.shape, shape);
  }

  // The generator drew norms as 1 + 0.1 * randn and matrices as 0.2 * randn.
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const FloatTensor values = to_float(file->get(name));
    double sum = 0, sum_squares = 0;
    for (float v : values.values) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum_squares += static_cast<double>(v) * v;
    }
    const double mean = sum / static_cast<double>(values.numel());
    const double spread = std::sqrt(sum_squares / static_cast<double>(values.numel()) - mean * mean);
    if (name.ends_with("norm.weight")) {
      EXPECT_NEAR(mean, 1.0, 0.05);
      EXPECT_NEAR(spread, 0.1, 0.05);
    } else {
      EXPECT_NEAR(mean, 0.0, 0.02);
      EXPECT_NEAR(spread, 0.2, 0.03);
    }
  }
}

// reference.json lists each case's prompt and greedy continuation; the
// reference.safetensors beside it holds the same lists as int32 tensors.
TEST(SafetensorsFile, ReferenceTensorsEqualReferenceJsonInEveryFixture) {
  int fixtures = 0;
  for (const auto& dir : std::filesystem::directory_iterator(kModels)) {
    if (!std::filesystem::exists(dir.path() / "reference.json")) continue;
    SCOPED_TRACE(dir.path().string());
    ++fixtures;
    const auto reference = read_json(dir.path() / "reference.json");
    const auto file = SafetensorsFile::open(dir.path() / "reference.safetensors");
    const auto& cases = reference["cases"];
    ASSERT_FALSE(cases.empty());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      for (const std::string field : {"prompt", "generated"}) {
        const TensorView view = file->get(field + "_" + std::to_string(i));
        ASSERT_EQ(view.dtype, DType::i32);
        ASSERT_EQ(view.shape.size(), 1u);
        EXPECT_THAT(int32_values(view), ElementsAreArray(cases[i][field].get<std::vector<int32_t>>()));
      }
      const TensorView logits = file->get("logits_" + std::to_string(i));
      EXPECT_EQ(logits.dtype, DType::f32);
      EXPECT_EQ(logits.shape, (Shape{static_cast<int64_t>(cases[i]["prompt"].size() + cases[i]["generated"].size()),
                                     reference["vocab_size"].get<int64_t>()}));
    }
  }
  EXPECT_GE(fixtures, 3);
}

TEST(SafetensorsFile, ViewsPointIntoTheMapAndKeepItAlive) {
  TempDir dir;
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  write_file(dir / "a.safetensors",
             safetensors_bytes(R"({"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                               testing::raw_bytes(values)));
  auto file = SafetensorsFile::open(dir / "a.safetensors");
  EXPECT_EQ(file->path(), dir / "a.safetensors");
  EXPECT_EQ(file->metadata(), nlohmann::json({{"k", "v"}}));
  const TensorView first = file->get("x");
  EXPECT_EQ(first.data, file->get("x").data);  // the same bytes, not a copy
  file.reset();
  std::filesystem::remove(dir / "a.safetensors");
  const auto* p = static_cast<const float*>(first.data);
  EXPECT_EQ(std::vector<float>(p, p + 6), values);
}

TEST(SafetensorsFile, ReadsEverySupportedDtypeAndEmptyAndScalarTensors) {
  TempDir dir;
  const std::string header = R"({"f64":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                             R"("i64":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                             R"("f32":{"dtype":"F32","shape":[],"data_offsets":[16,20]},)"
                             R"("i32":{"dtype":"I32","shape":[1],"data_offsets":[20,24]},)"
                             R"("f16":{"dtype":"F16","shape":[1],"data_offsets":[24,26]},)"
                             R"("bf16":{"dtype":"BF16","shape":[1],"data_offsets":[26,28]},)"
                             R"("i8":{"dtype":"I8","shape":[1],"data_offsets":[28,29]},)"
                             R"("u8":{"dtype":"U8","shape":[1],"data_offsets":[29,30]},)"
                             R"("bool":{"dtype":"BOOL","shape":[1],"data_offsets":[30,31]},)"
                             R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[31,31]}})";
  const std::string data = testing::raw_bytes(std::vector<double>{-0.5}) +
                           testing::raw_bytes(std::vector<int64_t>{-7}) + testing::raw_bytes(std::vector<float>{2.5f}) +
                           testing::raw_bytes(std::vector<int32_t>{9}) +
                           testing::raw_bytes(std::vector<uint16_t>{0x3c00, 0x4040}) + "\xfe\x07\x01";
  write_file(dir / "all.safetensors", safetensors_bytes(header, data));
  const auto file = SafetensorsFile::open(dir / "all.safetensors");
  EXPECT_EQ(file->names().size(), 10u);
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_EQ(*static_cast<const double*>(file->get("f64").data), -0.5);
  EXPECT_EQ(*static_cast<const int64_t*>(file->get("i64").data), -7);
  EXPECT_EQ(file->get("f32").shape, Shape{});
  EXPECT_EQ(to_float(file->get("f32")).values, std::vector<float>{2.5f});
  EXPECT_EQ(*static_cast<const int32_t*>(file->get("i32").data), 9);
  EXPECT_EQ(to_float(file->get("f16")).values, std::vector<float>{1.0f});
  EXPECT_EQ(to_float(file->get("bf16")).values, std::vector<float>{3.0f});
  EXPECT_EQ(*static_cast<const int8_t*>(file->get("i8").data), -2);
  EXPECT_EQ(*static_cast<const uint8_t*>(file->get("u8").data), 7);
  EXPECT_EQ(file->get("bool").dtype, DType::boolean);
  EXPECT_EQ(file->get("empty").shape, (Shape{0, 5}));
  EXPECT_EQ(file->get("empty").nbytes(), 0u);
}

// Writes `bytes` as bad.safetensors and returns the message open() throws.
std::string open_error(std::string_view bytes) {
  TempDir dir;
  write_file(dir / "bad.safetensors", bytes);
  try {
    SafetensorsFile::open(dir / "bad.safetensors");
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.safetensors"));
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string open_error_with_header(std::string_view header, std::size_t data_size) {
  return open_error(safetensors_bytes(header, std::string(data_size, '\0')));
}

TEST(SafetensorsFile, RejectsAFileShorterThanTheLengthField) {
  EXPECT_THAT(open_error("\x10\x00\x00"), HasSubstr("shorter than 8 bytes"));
  EXPECT_THAT(open_error(""), HasSubstr("shorter than 8 bytes"));
}

TEST(SafetensorsFile, RejectsAHeaderPastTheEnd) {
  EXPECT_THAT(open_error(testing::little_endian<uint64_t>(100) + "{}"), HasSubstr("header past the end"));
  EXPECT_THAT(open_error(testing::little_endian<uint64_t>(~uint64_t{0}) + "{}"), HasSubstr("header past the end"));
}

TEST(SafetensorsFile, RejectsAHeaderThatIsNotJsonOrNotAnObject) {
  EXPECT_THAT(open_error_with_header(R"({"x": {"dtype": "F32",)", 0), HasSubstr("header is not valid JSON"));
  // A number too large for a double is a JSON error too (nlohmann throws out_of_range, not parse_error; found by
  // safetensors_fuzz).
  EXPECT_THAT(open_error_with_header(R"({"x": {"dtype": "F32", "shape": [7e777777]}})", 0),
              HasSubstr("header is not valid JSON"));
  EXPECT_THAT(open_error_with_header("[1, 2]", 0), HasSubstr("header is not a JSON object"));
  EXPECT_THAT(open_error_with_header(R"({"x": 3})", 0), HasSubstr("tensor 'x': entry is not an object"));
}

TEST(SafetensorsFile, RejectsAnEntryMissingAField) {
  EXPECT_THAT(open_error_with_header(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
              HasSubstr("tensor 'w': entry has no dtype"));
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
              HasSubstr("tensor 'w': entry has no shape"));
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "F32", "shape": [1]}})", 4),
              HasSubstr("tensor 'w': entry has no data_offsets"));
}

TEST(SafetensorsFile, RejectsAnUnsupportedDtypeListingTheSupportedOnes) {
  const std::string message =
      open_error_with_header(R"({"w": {"dtype": "F8_E5M2", "shape": [4], "data_offsets": [0, 4]}})", 4);
  EXPECT_THAT(message, HasSubstr("tensor 'w': unsupported dtype F8_E5M2"));
  EXPECT_THAT(message, HasSubstr("F64, F32, F16, BF16, F8_E4M3, I64, I32, I8, U8, BOOL"));
}

TEST(SafetensorsFile, RejectsBadOffsets) {
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 2]}})", 8),
              HasSubstr("tensor 'w': data_offsets begin 4 > end 2"));
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "U8", "shape": [12], "data_offsets": [0, 12]}})", 8),
              HasSubstr("tensor 'w': data_offsets end 12 is past the end of the data section (8 bytes)"));
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [-2, 0]}})", 8),
              HasSubstr("is not a pair of non-negative integers"));
}

TEST(SafetensorsFile, RejectsAByteCountThatDoesNotMatchTheShape) {
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 10]}})", 16),
              HasSubstr("tensor 'w': wrong byte count: shape [2, 3] of BF16 needs 12 bytes, offsets give 10"));
}

TEST(SafetensorsFile, RejectsNegativeDimensions) {
  EXPECT_THAT(open_error_with_header(R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 0]}})", 8),
              HasSubstr("tensor 'w': negative dimension in shape [2, -3]"));
}

TEST(SafetensorsFile, RejectsOverlappingTensorsNamingBoth) {
  const std::string message =
      open_error_with_header(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                             R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [20, 24]},)"
                             R"( "c": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                             24);
  EXPECT_THAT(message, HasSubstr("overlapping offsets"));
  EXPECT_THAT(message, HasSubstr("tensor 'a' [0, 16)"));
  EXPECT_THAT(message, HasSubstr("tensor 'c' [8, 16)"));
}

TEST(SafetensorsFile, GetOfAnUnknownTensorNamesTensorAndFile) {
  TempDir dir;
  write_file(dir / "one.safetensors",
             safetensors_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x"));
  const auto file = SafetensorsFile::open(dir / "one.safetensors");
  EXPECT_FALSE(file->contains("b"));
  try {
    file->get("b");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'b' not found in"));
    EXPECT_THAT(e.what(), HasSubstr("one.safetensors"));
  }
}

}  // namespace
}  // namespace kiln::checkpoint
