#include "checkpoint/zip_archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "checkpoint_test_support.h"
#include "core/error.h"

namespace kiln::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_file;
using testing::ZipWriter;

std::string as_string(const ZipEntryData& data) {
  return std::string(reinterpret_cast<const char*>(data.bytes.data()), data.bytes.size());
}

std::string error_opening(const std::filesystem::path& path) {
  try {
    const ZipArchive archive(MappedFile::open(path));
    for (const ZipEntry& entry : archive.entries()) archive.read(entry);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class ZipArchiveTest : public ::testing::TestWithParam<bool> {};

TEST_P(ZipArchiveTest, ListsEntriesAndReadsStoredAndDeflatedData) {
  const bool zip64 = GetParam();
  const std::string text(5000, 'a');
  const std::string binary("\x00\x01\x02\xff", 4);
  TempDir dir;
  write_file(dir / "t.zip", ZipWriter()
                                .stored("top/data/0", binary)
                                .deflated("top/notes.txt", text)
                                .stored("top/empty", "")
                                .deflated("top/empty_deflated", "")
                                .finish(zip64));
  const auto file = MappedFile::open(dir / "t.zip");
  const ZipArchive archive(file);
  EXPECT_EQ(archive.path(), dir / "t.zip");
  ASSERT_EQ(archive.entries().size(), 4u);
  EXPECT_EQ(archive.entries()[0].name, "top/data/0");
  EXPECT_EQ(archive.entries()[1].method, 8);
  EXPECT_LT(archive.entries()[1].compressed_size, text.size());
  EXPECT_EQ(archive.entries()[1].uncompressed_size, text.size());

  const ZipEntryData stored = archive.read(*archive.find("top/data/0"));
  EXPECT_EQ(as_string(stored), binary);
  // Stored data is a view into the map, not a copy.
  EXPECT_GE(stored.bytes.data(), file->data());
  EXPECT_LE(stored.bytes.data() + stored.bytes.size(), file->data() + file->size());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(stored.bytes.data()) % 64, 0u);  // torch aligns data at 64 bytes

  const ZipEntryData inflated = archive.read(*archive.find("top/notes.txt"));
  EXPECT_EQ(as_string(inflated), text);
  EXPECT_TRUE(archive.read(*archive.find("top/empty")).bytes.empty());
  EXPECT_TRUE(archive.read(*archive.find("top/empty_deflated")).bytes.empty());
  EXPECT_EQ(archive.find("top/missing"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(PlainAndZip64, ZipArchiveTest, ::testing::Bool());

TEST(ZipArchive, ReadsTheFixturesTorchArchive) {
  const auto path = testing::kModels / "llama-fp16-bin" / "pytorch_model-00001-of-00002.bin";
  const ZipArchive archive(MappedFile::open(path));
  const ZipEntry* byteorder = archive.find("pytorch_model-00001-of-00002/byteorder");
  ASSERT_NE(byteorder, nullptr);
  EXPECT_EQ(as_string(archive.read(*byteorder)), "little");
  const ZipEntry* embedding = archive.find("pytorch_model-00001-of-00002/data/0");
  ASSERT_NE(embedding, nullptr);
  EXPECT_EQ(archive.read(*embedding).bytes.size(), 384u * 64u * 2u);  // fp16 [vocab, hidden]
}

TEST(ZipArchive, RejectsFilesThatAreNotZips) {
  TempDir dir;
  write_file(dir / "short.zip", "PK");
  EXPECT_THAT(error_opening(dir / "short.zip"), HasSubstr("short.zip: not a ZIP file (too short)"));
  write_file(dir / "text.zip", std::string(100, 'x'));
  EXPECT_THAT(error_opening(dir / "text.zip"), HasSubstr("text.zip: not a ZIP file (no end-of-central-directory"));
}

TEST(ZipArchive, RejectsDamagedArchivesNamingTheEntry) {
  TempDir dir;
  std::string zip = ZipWriter().deflated("a/blob", std::string(1000, 'q')).finish();
  // An end record pointing past the end of the file.
  std::string misplaced = zip;
  misplaced.replace(misplaced.size() - 22 + 16, 4, testing::little_endian<uint32_t>(1u << 30));
  write_file(dir / "misplaced.zip", misplaced);
  EXPECT_THAT(error_opening(dir / "misplaced.zip"),
              HasSubstr("misplaced.zip: central directory lies past the end of the file"));

  // A central directory cut short.
  std::string cut = zip;
  cut.replace(cut.size() - 22 + 12, 4, testing::little_endian<uint32_t>(20));
  write_file(dir / "cut.zip", cut);
  EXPECT_THAT(error_opening(dir / "cut.zip"), HasSubstr("cut.zip: truncated central directory"));

  // Corrupting the compressed bytes (they begin after the 64-byte aligned local header).
  std::string corrupt = zip;
  for (std::size_t i = 64; i < 70; ++i) corrupt[i] = static_cast<char>(~corrupt[i]);
  write_file(dir / "corrupt.zip", corrupt);
  const std::string message = error_opening(dir / "corrupt.zip");
  EXPECT_THAT(message, HasSubstr("corrupt.zip: entry a/blob"));

  // An unknown compression method (12 is bzip2), patched into the central directory.
  std::string bzip = ZipWriter().stored("a/b", "xyz").finish();
  const std::size_t central = bzip.find(std::string("PK\x01\x02", 4));
  bzip[central + 10] = 12;
  write_file(dir / "bzip.zip", bzip);
  EXPECT_THAT(error_opening(dir / "bzip.zip"), HasSubstr("bzip.zip: entry a/b: unsupported compression method 12"));
}

}  // namespace
}  // namespace kiln::checkpoint
