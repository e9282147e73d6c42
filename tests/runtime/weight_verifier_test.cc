// Checking uploaded weights against engine.json's chunk checksums: the chunks
// of a blob put together from separately placed tensor copies (zeros between
// them) must hash to what engine::BlobChecksum records of the file itself,
// and any byte that differs, in a tensor or in the padding, must show up in
// the chunk that holds it. The CUDA kernel is held to the same digests on the
// GPU machine (scripts/gpu-check.sh).
#include "runtime/weight_verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/checksum.h"
#include "runtime/uploaded_checksum.h"

namespace kiln::runtime {
namespace {

constexpr uint64_t kChunk = engine::BlobChecksum::kChunkBytes;

// A rank blob with tensors of awkward sizes at aligned offsets, zero padding,
// one tensor across two chunk boundaries, and its chunk checksums.
struct SyntheticBlob {
  std::vector<unsigned char> file;
  engine::Manifest manifest;
  std::map<std::string, std::vector<unsigned char>> copies;  // "uploaded" tensors, each its own allocation

  SyntheticBlob() {
    const std::vector<std::pair<std::string, uint64_t>> sizes = {
        {"a", 100},        {"b", 17}, {"c", 3 * kChunk / 2}, {"d", 4096},    {"e", 1000},
        {"f", 5 * kChunk}, {"g", 1},  {"h", kChunk - 64},    {"i", 256 * 3}, {"j", 2 * kChunk / 3},
    };
    engine::RankBlob blob;
    blob.file = "rank0.bin";
    uint64_t at = 0;
    for (const auto& [name, nbytes] : sizes) {
      at = (at + engine::kTensorAlignment - 1) / engine::kTensorAlignment * engine::kTensorAlignment;
      engine::TensorEntry t;
      t.name = name;
      t.dtype = DType::u8;
      t.shape = {static_cast<int64_t>(nbytes)};
      t.offset = at;
      t.nbytes = nbytes;
      blob.tensors.push_back(t);
      at += nbytes;
    }
    file.assign(at + 300, 0);  // trailing padding as well
    std::mt19937_64 random(7);
    for (const auto& t : blob.tensors) {
      for (uint64_t i = 0; i < t.nbytes; ++i) file[t.offset + i] = static_cast<unsigned char>(random());
    }
    // Listed out of blob order, as nothing promises otherwise.
    std::swap(blob.tensors[1], blob.tensors[6]);
    blob.size = file.size();
    manifest.ranks.push_back(blob);
    rehash();
    for (const auto& t : manifest.ranks[0].tensors) {
      copies[t.name].assign(file.begin() + static_cast<std::ptrdiff_t>(t.offset),
                            file.begin() + static_cast<std::ptrdiff_t>(t.offset + t.nbytes));
    }
  }

  // The checksums a writer records of `file` as it is now.
  void rehash() {
    engine::BlobChecksum sum;
    sum.update(file.data(), file.size());
    auto& blob = manifest.ranks[0];
    blob.checksum = sum.digest();
    blob.chunk_bytes = kChunk;
    blob.chunk_checksums = sum.chunk_digests();
  }

  UploadedCheckPlan plan(const std::string& missing = "") const {
    return plan_uploaded_check(manifest, [&](std::size_t, const engine::TensorEntry& t) -> const void* {
      return t.name == missing ? nullptr : copies.at(t.name).data();
    });
  }

  // Which uploaded pieces (by blob offset) hash differently from engine.json.
  std::vector<uint64_t> mismatched() const {
    const UploadedCheckPlan p = plan();
    const std::vector<uint64_t> digests = checksum_in_host_memory(p.layouts);
    std::vector<uint64_t> bad;
    for (std::size_t i = 0; i < p.uploaded.size(); ++i) {
      if (digests[i] != p.uploaded[i].expected) bad.push_back(p.uploaded[i].offset);
    }
    return bad;
  }

  uint64_t offset_of(const std::string& name) const {
    for (const auto& t : manifest.ranks[0].tensors) {
      if (t.name == name) return t.offset;
    }
    return ~uint64_t{0};
  }
};

TEST(WeightVerifier, UploadedTensorsHashToTheFilesChunkChecksums) {
  SyntheticBlob blob;
  const UploadedCheckPlan p = blob.plan();
  ASSERT_GE(blob.manifest.ranks[0].chunk_checksums.size(), 4u);
  EXPECT_EQ(p.uploaded.size(), blob.manifest.ranks[0].chunk_checksums.size());
  EXPECT_TRUE(p.from_file.empty());
  // Every byte of every tensor lies in exactly one span.
  uint64_t spanned = 0, tensor_bytes = 0;
  for (const auto& layout : p.layouts) {
    for (const auto& s : layout.spans) spanned += s.nbytes;
  }
  for (const auto& t : blob.manifest.ranks[0].tensors) tensor_bytes += t.nbytes;
  EXPECT_EQ(spanned, tensor_bytes);
  EXPECT_TRUE(blob.mismatched().empty());
}

TEST(WeightVerifier, AFlippedTensorByteFailsTheChunkHoldingIt) {
  SyntheticBlob blob;
  // Tensor f spans chunks; flip a byte 2 chunks into it.
  const uint64_t at = blob.offset_of("f") + 2 * kChunk + 12345;
  blob.copies["f"][2 * kChunk + 12345] ^= 0x10;
  EXPECT_EQ(blob.mismatched(), std::vector<uint64_t>{at / kChunk * kChunk});
  // And the last byte of a short tensor (inside a stripe the padding completes).
  SyntheticBlob other;
  other.copies["b"][16] ^= 1;
  EXPECT_EQ(other.mismatched(), std::vector<uint64_t>{0});
}

TEST(WeightVerifier, PaddingIsTakenAsTheZerosTheWriterWrote) {
  SyntheticBlob blob;
  // A byte between tensors e and f. Damaged in the file after the checksums
  // were recorded, nothing loaded holds it: the upload still verifies (what
  // the kernels read is intact; `inspect --check` hashes the file).
  const uint64_t gap = blob.offset_of("f") - 7;
  ASSERT_EQ(blob.file[gap], 0);
  blob.file[gap] = 0x55;
  EXPECT_TRUE(blob.mismatched().empty());
  // Recorded as non-zero, the upload's zeros there no longer match: padding is
  // hashed as zeros, not skipped.
  blob.rehash();
  EXPECT_EQ(blob.mismatched(), std::vector<uint64_t>{gap / kChunk * kChunk});
}

TEST(WeightVerifier, ChunksWithATensorNotUploadedAreHashedFromTheFile) {
  SyntheticBlob blob;
  const UploadedCheckPlan p = blob.plan("c");
  const uint64_t begin = blob.offset_of("c"), end = begin + 3 * kChunk / 2;
  ASSERT_FALSE(p.from_file.empty());
  for (const auto& piece : p.from_file) {
    EXPECT_TRUE(piece.offset < end && piece.offset + piece.size > begin) << piece.offset;
  }
  EXPECT_EQ(p.from_file.size() + p.uploaded.size(), blob.manifest.ranks[0].chunk_checksums.size());
}

TEST(WeightVerifier, EnginesWithoutAlignedChunksAreHashedFromTheFile) {
  SyntheticBlob blob;
  blob.manifest.ranks[0].chunk_checksums.clear();  // written before chunk checksums existed
  UploadedCheckPlan p = blob.plan();
  ASSERT_EQ(p.from_file.size(), 1u);
  EXPECT_TRUE(p.from_file[0].whole_file);
  EXPECT_TRUE(p.uploaded.empty());

  SyntheticBlob odd;
  odd.manifest.ranks[0].chunk_bytes = kChunk + 8;  // stripes would straddle tensors
  odd.manifest.ranks[0].chunk_checksums.resize(odd.file.size() / (kChunk + 8) + 1);
  p = odd.plan();
  EXPECT_TRUE(p.uploaded.empty());
  EXPECT_EQ(p.from_file.size(), odd.manifest.ranks[0].chunk_checksums.size());
}

}  // namespace
}  // namespace kiln::runtime
