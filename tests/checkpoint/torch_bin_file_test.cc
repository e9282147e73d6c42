#include "checkpoint/torch_bin_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "checkpoint_test_support.h"
#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::kModels;
using testing::PickleWriter;
using testing::TempDir;
using testing::torch_archive;
using testing::write_file;
using testing::ZipWriter;

std::vector<float> floats(const TensorView& view) {
  const auto* p = static_cast<const float*>(view.data);
  return std::vector<float>(p, p + view.numel());
}

// Storage "0" holds the floats 0..11; tensors view it in several ways.
std::string strided_state_dict_pickle() {
  PickleWriter p;
  p.proto(2).global("collections", "OrderedDict").put(0).op(')').op('R').mark();
  p.unicode("rows_6_to_11").tensor("FloatStorage", "0", 12, 6, {2, 3}, {3, 1});
  p.unicode("transposed").tensor("FloatStorage", "0", 12, 0, {3, 2}, {1, 3});
  p.unicode("transposed_offset").tensor("FloatStorage", "0", 12, 1, {2, 2}, {1, 4});
  p.unicode("unit_dim_any_stride").tensor("FloatStorage", "0", 12, 8, {1, 4}, {100, 1});
  p.unicode("empty").tensor("FloatStorage", "0", 12, 0, {0, 3}, {3, 1});
  p.unicode("param").global("torch._utils", "_rebuild_parameter").mark();
  p.tensor("HalfStorage", "1", 3, 0, {3}, {1}).op(0x89).get(0).op(')').op('R').op('t').op('R');
  p.op('u').op('}').op('b').stop();  // SETITEMS, then BUILD with OrderedDict's state
  return p.bytes();
}

std::string float_storage(int n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0.0f);
  return testing::raw_bytes(v);
}

TEST(TorchBinFile, ReadsStridedTensorsOfAnyFolderName) {
  TempDir dir;
  const std::string half = testing::raw_bytes(std::vector<uint16_t>{0x3c00, 0xc000, 0x3800});  // 1, -2, 0.5
  write_file(dir / "w.bin",
             torch_archive("weird_name", strided_state_dict_pickle(), {{"0", float_storage(12)}, {"1", half}}));
  const auto file = TorchBinFile::open(dir / "w.bin");
  EXPECT_EQ(file->path(), dir / "w.bin");
  EXPECT_EQ(file->names(), (std::vector<std::string>{"empty", "param", "rows_6_to_11", "transposed",
                                                     "transposed_offset", "unit_dim_any_stride"}));
  EXPECT_TRUE(file->contains("param"));
  EXPECT_FALSE(file->contains("missing"));

  const TensorView rows = file->get("rows_6_to_11");
  EXPECT_EQ(rows.dtype, DType::f32);
  EXPECT_EQ(rows.shape, (Shape{2, 3}));
  EXPECT_EQ(floats(rows), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(rows.data, file->get("rows_6_to_11").data);  // a view into the map each time

  const TensorView transposed = file->get("transposed");
  EXPECT_EQ(transposed.shape, (Shape{3, 2}));
  EXPECT_EQ(floats(transposed), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_NE(transposed.data, file->get("transposed").data);  // a fresh contiguous copy

  EXPECT_EQ(floats(file->get("transposed_offset")), (std::vector<float>{1, 5, 2, 6}));
  EXPECT_EQ(floats(file->get("unit_dim_any_stride")), (std::vector<float>{8, 9, 10, 11}));
  EXPECT_EQ(file->get("empty").shape, (Shape{0, 3}));

  const TensorView param = file->get("param");
  EXPECT_EQ(param.dtype, DType::f16);
  EXPECT_EQ(to_float(param).values, (std::vector<float>{1.0f, -2.0f, 0.5f}));
}

TEST(TorchBinFile, ViewsOutliveTheFile) {
  TempDir dir;
  write_file(dir / "w.bin", torch_archive("archive", strided_state_dict_pickle(),
                                          {{"0", float_storage(12)}, {"1", std::string(6, '\0')}}));
  auto file = TorchBinFile::open(dir / "w.bin");
  const TensorView rows = file->get("rows_6_to_11");
  const TensorView transposed = file->get("transposed");
  file.reset();
  std::filesystem::remove(dir / "w.bin");
  EXPECT_EQ(floats(rows), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(floats(transposed), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TorchBinFile, ReadsDeflatedStorages) {
  TempDir dir;
  const std::string pickle = PickleWriter()
                                 .proto(2)
                                 .op('}')
                                 .unicode("w")
                                 .tensor("IntStorage", "0", 64, 0, {8, 8}, {8, 1})
                                 .op('s')
                                 .stop()
                                 .bytes();
  std::vector<int32_t> values(64, 7);
  write_file(
      dir / "w.bin",
      ZipWriter().stored("archive/data.pkl", pickle).deflated("archive/data/0", testing::raw_bytes(values)).finish());
  const TensorView w = TorchBinFile::open(dir / "w.bin")->get("w");
  EXPECT_EQ(w.dtype, DType::i32);
  const auto* p = static_cast<const int32_t*>(w.data);
  EXPECT_EQ(std::vector<int32_t>(p, p + 64), values);
}

TEST(TorchBinFile, ReadsTheFixtureShardsWrittenByTorchSave) {
  std::ifstream index_file(kModels / "llama-fp16-bin" / "pytorch_model.bin.index.json");
  const auto index = nlohmann::json::parse(index_file);
  std::ifstream config_file(kModels / "llama-fp16-bin" / "config.json");
  const auto config = nlohmann::json::parse(config_file);
  const int64_t hidden = config["hidden_size"], inter = config["intermediate_size"], vocab = config["vocab_size"];
  const int64_t kv_width = config["num_key_value_heads"].get<int64_t>() * config["head_dim"].get<int64_t>();

  std::size_t tensors = 0;
  for (const std::string shard : {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"}) {
    const auto file = TorchBinFile::open(kModels / "llama-fp16-bin" / shard);
    for (const std::string& name : file->names()) {
      SCOPED_TRACE(name);
      ++tensors;
      EXPECT_EQ(index.at("weight_map").at(name), shard);
      const TensorView view = file->get(name);
      EXPECT_EQ(view.dtype, DType::f16);
      EXPECT_EQ(view.data, file->get(name).data);  // zero-copy
      Shape expected{hidden, hidden};
      if (name.ends_with("norm.weight")) expected = {hidden};
      if (name.ends_with("k_proj.weight") || name.ends_with("v_proj.weight")) expected = {kv_width, hidden};
      if (name.ends_with("gate_proj.weight") || name.ends_with("up_proj.weight")) expected = {inter, hidden};
      if (name.ends_with("down_proj.weight")) expected = {hidden, inter};
      if (name == "model.embed_tokens.weight" || name == "lm_head.weight") expected = {vocab, hidden};
      EXPECT_EQ(view.shape, expected);

      // fp16 bits decode to finite values; norms were drawn as 1 + 0.1 * randn.
      for (float v : to_float(view).values) {
        ASSERT_TRUE(std::isfinite(v));
        if (name.ends_with("norm.weight")) {
          EXPECT_NEAR(v, 1.0f, 0.5f);
        } else {
          EXPECT_LT(std::fabs(v), 1.5f);
        }
      }
    }
  }
  EXPECT_EQ(tensors, index["weight_map"].size());
}

std::string open_error(const std::string& bytes) {
  TempDir dir;
  write_file(dir / "bad.bin", bytes);
  try {
    TorchBinFile::open(dir / "bad.bin");
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.bin"));
    return e.what();
  }
  return "no error";
}

TEST(TorchBinFile, RejectsATensorReachingPastItsStorage) {
  const std::string pickle = PickleWriter()
                                 .proto(2)
                                 .op('}')
                                 .unicode("big")
                                 .tensor("FloatStorage", "0", 12, 2, {2, 6}, {1, 2})
                                 .op('s')
                                 .stop()
                                 .bytes();
  const std::string message = open_error(torch_archive("archive", pickle, {{"0", float_storage(12)}}));
  EXPECT_THAT(message, HasSubstr("tensor 'big' (offset 2, size [2, 6], stride [1, 2], fp32) reaches past the end"));
  EXPECT_THAT(message, HasSubstr("storage 0 of 48 bytes"));
}

TEST(TorchBinFile, RejectsAMissingStorage) {
  const std::string pickle =
      PickleWriter().proto(2).op('}').unicode("w").tensor("FloatStorage", "9", 1, 0, {1}, {1}).op('s').stop().bytes();
  EXPECT_THAT(open_error(torch_archive("archive", pickle, {})),
              HasSubstr("tensor 'w': storage archive/data/9 is missing from the archive"));
}

TEST(TorchBinFile, RefusesForbiddenGlobals) {
  const std::string pickle =
      PickleWriter().proto(2).global("os", "system").mark().unicode("rm -rf /").op('t').op('R').stop().bytes();
  const std::string message = open_error(torch_archive("archive", pickle, {}));
  EXPECT_THAT(message, HasSubstr("unsupported pickle global os.system in"));
  EXPECT_THAT(message, HasSubstr("no code is executed"));
}

TEST(TorchBinFile, RejectsWhatIsNotAFlatStateDictOfTensors) {
  EXPECT_THAT(open_error(torch_archive("archive", PickleWriter().proto(2).op(']').stop().bytes(), {})),
              HasSubstr("holds a value of type list, not a state dict"));
  EXPECT_THAT(open_error(torch_archive(
                  "archive", PickleWriter().proto(2).op('}').unicode("epoch").int1(3).op('s').stop().bytes(), {})),
              HasSubstr("entry 'epoch' is of type int, not a tensor"));
}

TEST(TorchBinFile, RejectsOtherLayouts) {
  // torch.save before 1.6: a bare pickle starting with PROTO 2 and a magic number.
  EXPECT_THAT(open_error(std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14)),
              HasSubstr("legacy (pre-1.6) PyTorch format is not supported: re-save with "
                        "torch.save(..., _use_new_zipfile_serialization=True) or convert to safetensors"));
  EXPECT_THAT(open_error(ZipWriter().stored("archive/other.pkl", "").finish()), HasSubstr("no <folder>/data.pkl"));
  EXPECT_THAT(open_error(ZipWriter()
                             .stored("archive/data.pkl", PickleWriter().proto(2).op('}').stop().bytes())
                             .stored("archive/byteorder", "big")
                             .finish()),
              HasSubstr("byte order 'big' is not supported"));
}

}  // namespace
}  // namespace kiln::checkpoint
