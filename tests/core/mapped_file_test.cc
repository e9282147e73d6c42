#include "core/mapped_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "support/temp_dir.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using kiln::test::TempDir;

std::string open_error(const fs::path& path) {
  try {
    MappedFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(MappedFile, MapsTheFileContents) {
  TempDir dir;
  const fs::path path = dir.path() / "data.bin";
  std::string bytes(10000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  auto file = MappedFile::open(path);
  ASSERT_EQ(file->size(), bytes.size());
  EXPECT_EQ(file->path(), path);
  EXPECT_EQ(std::memcmp(file->data(), bytes.data(), bytes.size()), 0);
}

TEST(MappedFile, EmptyFileHasSizeZero) {
  TempDir dir;
  const fs::path path = dir.path() / "empty";
  std::ofstream(path).close();
  auto file = MappedFile::open(path);
  EXPECT_EQ(file->size(), 0u);
}

TEST(MappedFile, ErrorNamesTheMissingPath) {
  TempDir dir;
  const fs::path path = dir.path() / "no-such-file.safetensors";
  const std::string message = open_error(path);
  EXPECT_THAT(message, HasSubstr(path.string()));
  EXPECT_THAT(message, HasSubstr("No such file"));
}

TEST(MappedFile, ErrorNamesAnUnmappablePath) {
  TempDir dir;  // a directory opens read-only but cannot be mapped or read as a file
  const std::string message = open_error(dir.path());
  EXPECT_THAT(message, HasSubstr(dir.path().string()));
}

TEST(Tensor, ShapeHelpersAndToFloat) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({3, 0, 2}), 0);
  EXPECT_EQ(shape_numel({384, 64}), 384 * 64);
  EXPECT_EQ(shape_str({384, 64}), "[384, 64]");
  EXPECT_EQ(shape_str({}), "[]");

  const uint16_t half[3] = {0x3c00, 0xc000, 0x0001};  // 1, -2, 2^-24
  TensorView view;
  view.dtype = DType::f16;
  view.shape = {3};
  view.data = half;
  EXPECT_EQ(view.nbytes(), 6u);
  const FloatTensor t = to_float(view);
  ASSERT_EQ(t.shape, (Shape{3}));
  EXPECT_EQ(t.values[0], 1.0f);
  EXPECT_EQ(t.values[1], -2.0f);
  EXPECT_EQ(t.values[2], 1.0f / 16777216.0f);
}

}  // namespace
}  // namespace kiln
