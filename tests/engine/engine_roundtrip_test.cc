// EngineWriter -> Engine: bytes, offsets, manifest and ModelSpec survive the
// round trip; writes are atomic; the reader refuses other targets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "engine/engine_reader.h"
#include "engine/engine_writer.h"
#include "engine/spec_json.h"
#include "support/temp_dir.h"

namespace kiln::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using kiln::test::TempDir;

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A spec in which every field differs from ModelSpec{}'s default.
ModelSpec unusual_spec() {
  ModelSpec s;
  s.family = "testfamily";
  s.hf_architecture = "TestForCausalLM";
  s.vocab_size = 1001;
  s.hidden_size = 96;
  s.num_layers = 3;
  s.num_heads = 6;
  s.num_kv_heads = 3;
  s.head_dim = 16;
  s.intermediate_size = 250;
  s.max_positions = 777;
  s.norm = NormKind::layer;
  s.norm_eps = 1.2345678901234567e-5;
  s.norm_bias = true;
  s.parallel_block = true;
  s.parallel_two_norms = true;
  s.qkv_bias = true;
  s.out_bias = true;
  s.positions = PositionKind::learned;
  s.rope.style = RopeStyle::interleaved;
  s.rope.rotary_dim = 8;
  s.rope.theta = 123456.789;
  s.rope.scaling = RopeScaling::yarn;
  s.rope.factor = 3.5;
  s.rope.low_freq_factor = 0.75;
  s.rope.high_freq_factor = 5.25;
  s.rope.original_max_positions = 333;
  s.rope.frequency_dtype = DType::bf16;
  s.sliding_window = 42;
  s.activation = Activation::gelu_tanh;
  s.gated_mlp = false;
  s.mlp_bias = true;
  s.num_experts = 8;
  s.experts_per_token = 2;
  s.tied_embeddings = true;
  s.lm_head_bias = true;
  s.eos_token_ids = {7, 11, 13};
  s.bos_token_id = 5;
  return s;
}

void expect_same_spec(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.hf_architecture, b.hf_architecture);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.max_positions, b.max_positions);
  EXPECT_EQ(a.norm, b.norm);
  EXPECT_EQ(a.norm_eps, b.norm_eps);  // exact: JSON keeps doubles to round-trip precision
  EXPECT_EQ(a.norm_bias, b.norm_bias);
  EXPECT_EQ(a.parallel_block, b.parallel_block);
  EXPECT_EQ(a.parallel_two_norms, b.parallel_two_norms);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.out_bias, b.out_bias);
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(a.rope.style, b.rope.style);
  EXPECT_EQ(a.rope.rotary_dim, b.rope.rotary_dim);
  EXPECT_EQ(a.rope.theta, b.rope.theta);
  EXPECT_EQ(a.rope.scaling, b.rope.scaling);
  EXPECT_EQ(a.rope.factor, b.rope.factor);
  EXPECT_EQ(a.rope.low_freq_factor, b.rope.low_freq_factor);
  EXPECT_EQ(a.rope.high_freq_factor, b.rope.high_freq_factor);
  EXPECT_EQ(a.rope.original_max_positions, b.rope.original_max_positions);
  EXPECT_EQ(a.rope.frequency_dtype, b.rope.frequency_dtype);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.activation, b.activation);
  EXPECT_EQ(a.gated_mlp, b.gated_mlp);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.num_experts, b.num_experts);
  EXPECT_EQ(a.experts_per_token, b.experts_per_token);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.lm_head_bias, b.lm_head_bias);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
}

TEST(SpecJson, EveryFieldSurvivesTheRoundTrip) {
  const ModelSpec defaults;
  const ModelSpec s = unusual_spec();
  // Guard the test itself: each field really differs from the default.
  ASSERT_NE(s.norm, defaults.norm);
  ASSERT_NE(s.positions, defaults.positions);
  ASSERT_NE(s.rope.style, defaults.rope.style);
  ASSERT_NE(s.rope.scaling, defaults.rope.scaling);
  ASSERT_NE(s.rope.frequency_dtype, defaults.rope.frequency_dtype);
  ASSERT_NE(s.activation, defaults.activation);
  ASSERT_NE(s.gated_mlp, defaults.gated_mlp);
  const nlohmann::json j = spec_to_json(s);
  expect_same_spec(spec_from_json(nlohmann::json::parse(j.dump())), s);
  expect_same_spec(spec_from_json(spec_to_json(defaults)), defaults);
}

TEST(SpecJson, MissingOrUnknownFieldsNameTheField) {
  nlohmann::json j = spec_to_json(unusual_spec());
  j["activation"] = "relu6";
  try {
    spec_from_json(j);
    ADD_FAILURE() << "relu6 accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("activation"));
    EXPECT_THAT(e.what(), HasSubstr("relu6"));
  }
  j = spec_to_json(unusual_spec());
  j.erase("num_kv_heads");
  try {
    spec_from_json(j);
    ADD_FAILURE() << "missing num_kv_heads accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("num_kv_heads"));
  }
}

struct Written {
  int rank;
  std::string name;
  DType dtype;
  Shape shape;
  std::string layout;
  std::vector<unsigned char> bytes;
};

std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
  std::vector<unsigned char> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>((i * 131 + seed * 17 + (i >> 8)) & 0xff);
  return out;
}

// `ranks`: the blobs the test's writer writes.
Manifest sample_manifest(int ranks = 2) {
  Manifest m;
  m.kiln_version = "9.8.7-test";
  m.spec = unusual_spec();
  m.target = Target{"cpu", "testarch"};
  m.dtype = DType::bf16;
  m.tensor_parallel = ranks;
  m.limits = Limits{3, 100, 200, 300};
  m.source = "/models/some checkpoint";
  m.created = "2024-01-02T03:04:05Z";
  m.build_seconds = 1.25;
  m.kernel_choices = {{"matmul", "avx2-8x8"}, {"tiles", {1, 2, 3}}};
  return m;
}

TEST(EngineWriter, RoundTripsTensorsBitIdenticallyAtAlignedOffsets) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  // Odd sizes so that every tensor after the first needs padding.
  const std::vector<Written> tensors = {
      {0, "embed.weight", DType::bf16, {7, 3}, "replicated", pattern(42, 1)},
      {0, "layers.0.attn.qkv.weight", DType::f32, {5, 3}, "qkv", pattern(60, 2)},
      {0, "scalar", DType::f64, {1}, "replicated", pattern(8, 3)},
      {0, "flags", DType::boolean, {3}, "replicated", pattern(3, 4)},
      {1, "embed.weight", DType::bf16, {7, 3}, "replicated", pattern(42, 5)},
      {1, "layers.0.attn.qkv.weight", DType::f16, {1, 1}, "qkv", pattern(2, 6)},
      {1, "ints", DType::i32, {257}, "column", pattern(1028, 7)},
      {1, "bytes", DType::u8, {1}, "row", pattern(1, 8)},
      {1, "quant", DType::i8, {300}, "row", pattern(300, 9)},
      {1, "longs", DType::i64, {2}, "gate_up", pattern(16, 10)},
  };
  {
    EngineWriter writer(out, 2, false);
    for (const auto& t : tensors)
      writer.add_tensor(t.rank, t.name, t.dtype, t.shape, t.layout, t.bytes.data(), t.bytes.size());
    writer.commit(sample_manifest());
  }
  ASSERT_TRUE(fs::is_directory(out));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"engine"});  // no temporary left beside it
  EXPECT_EQ(entries(out), (std::vector<std::string>{"engine.json", "rank0.bin", "rank1.bin"}));

  const Engine engine = Engine::open(out, Target{"cpu", "testarch"}, OpenCheck::container);
  engine.verify_checksums();
  const Manifest& m = engine.manifest();
  ASSERT_EQ(m.ranks.size(), 2u);
  for (const auto& t : tensors) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(engine.has_tensor(t.rank, t.name));
    const TensorView v = engine.tensor(t.rank, t.name);
    EXPECT_EQ(v.dtype, t.dtype);
    EXPECT_EQ(v.shape, t.shape);
    ASSERT_EQ(v.nbytes(), t.bytes.size());
    EXPECT_EQ(std::memcmp(v.data, t.bytes.data(), t.bytes.size()), 0);
    // The same bytes are in the blob file at the recorded offset, which is aligned.
    const auto& rank = m.ranks[static_cast<std::size_t>(t.rank)];
    const auto it =
        std::find_if(rank.tensors.begin(), rank.tensors.end(), [&](const TensorEntry& e) { return e.name == t.name; });
    ASSERT_NE(it, rank.tensors.end());
    EXPECT_EQ(it->offset % kTensorAlignment, 0u) << "offset " << it->offset;
    EXPECT_EQ(it->nbytes, t.bytes.size());
    EXPECT_EQ(it->layout, t.layout);
    std::ifstream blob(out / rank.file, std::ios::binary);
    blob.seekg(static_cast<std::streamoff>(it->offset));
    std::vector<unsigned char> on_disk(t.bytes.size());
    blob.read(reinterpret_cast<char*>(on_disk.data()), static_cast<std::streamsize>(on_disk.size()));
    EXPECT_EQ(on_disk, t.bytes);
  }
  // Tensors are laid out in order, each at the first aligned offset after the previous one.
  for (const auto& rank : m.ranks) {
    uint64_t end = 0;
    for (const auto& e : rank.tensors) {
      EXPECT_EQ(e.offset, (end + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment) << e.name;
      end = e.offset + e.nbytes;
    }
    EXPECT_EQ(rank.size, end);
    EXPECT_EQ(fs::file_size(out / rank.file), rank.size);
  }
  EXPECT_FALSE(engine.has_tensor(0, "ints"));
  EXPECT_THROW(engine.tensor(0, "ints"), Error);
}

// Tensors of sizes that need padding and span several write pieces.
std::vector<Written> planned_tensors() {
  std::vector<Written> out;
  for (int i = 0; i < 12; ++i) {
    const std::size_t n = 1 + static_cast<std::size_t>(i) * 37013 % 250007;
    out.push_back({i % 2,
                   "t" + std::to_string(i),
                   DType::u8,
                   {static_cast<int64_t>(n)},
                   "replicated",
                   pattern(n, static_cast<unsigned>(i) + 20)});
  }
  return out;
}

std::vector<unsigned char> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(EngineWriter, PlannedWritesFromManyThreadsGiveTheSameEngineAsWritingInOrder) {
  TempDir tmp;
  const auto tensors = planned_tensors();
  {
    EngineWriter writer(tmp.path() / "in-order", 2, false);
    for (const auto& t : tensors) {
      writer.add_tensor(t.rank, t.name, t.dtype, t.shape, t.layout, t.bytes.data(), t.bytes.size());
    }
    writer.commit(sample_manifest());
  }
  // Planned: reserved first, then written in pieces, out of order, from several
  // threads; through the map, through pwrite, and after two tensors added in order.
  for (const auto& [name, mapped, streamed] :
       {std::tuple{"mapped", true, 2}, std::tuple{"pwrite", false, 0}, std::tuple{"mapped-only", true, 0}}) {
    SCOPED_TRACE(name);
    const fs::path out = tmp.path() / name;
    {
      EngineWriter writer(out, 2, false, mapped);
      struct Piece {
        int rank;
        uint64_t offset;
        const unsigned char* data;
        std::size_t n;
      };
      std::vector<Piece> pieces;
      for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        if (static_cast<int>(i) < streamed) {
          writer.add_tensor(t.rank, t.name, t.dtype, t.shape, t.layout, t.bytes.data(), t.bytes.size());
          continue;
        }
        const uint64_t offset = writer.reserve_tensor(t.rank, t.name, t.dtype, t.shape, t.layout, t.bytes.size());
        EXPECT_EQ(offset % kTensorAlignment, 0u);
        for (std::size_t b = 0; b < t.bytes.size(); b += 4093) {
          pieces.push_back({t.rank, offset + b, t.bytes.data() + b, std::min<std::size_t>(4093, t.bytes.size() - b)});
        }
      }
      writer.allocate();
      std::reverse(pieces.begin(), pieces.end());
      std::vector<std::thread> threads;
      for (int k = 0; k < 4; ++k) {
        threads.emplace_back([&, k] {
          for (std::size_t i = static_cast<std::size_t>(k); i < pieces.size(); i += 4) {
            const Piece& p = pieces[i];
            if (std::byte* dst = writer.mapped(p.rank, p.offset, p.n)) {
              std::memcpy(dst, p.data, p.n);
              writer.written(p.rank, p.offset, p.n);
            } else {
              writer.write(p.rank, p.offset, p.data, p.n);
            }
          }
        });
      }
      for (auto& t : threads) t.join();
      writer.commit(sample_manifest());
    }
    const Engine engine = Engine::open(out, Target{"cpu", "testarch"}, OpenCheck::container);
    engine.verify_checksums();
    const Manifest expected = Engine::read_manifest(tmp.path() / "in-order");
    for (std::size_t r = 0; r < 2; ++r) {
      EXPECT_EQ(engine.manifest().ranks[r].checksum, expected.ranks[r].checksum);
      EXPECT_EQ(engine.manifest().ranks[r].size, expected.ranks[r].size);
      EXPECT_EQ(file_bytes(out / expected.ranks[r].file), file_bytes(tmp.path() / "in-order" / expected.ranks[r].file));
    }
  }
}

TEST(EngineWriter, PlannedWritesMustFillEveryReservedByte) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  {
    EngineWriter writer(out, 1, false);
    const auto bytes = pattern(1000, 1);
    const uint64_t a = writer.reserve_tensor(0, "a", DType::u8, {1000}, "replicated", 1000);
    writer.reserve_tensor(0, "b", DType::u8, {1000}, "replicated", 1000);
    EXPECT_THROW(writer.write(0, a, bytes.data(), 1000), Error) << "before allocate";
    writer.allocate();
    EXPECT_THROW(writer.reserve_tensor(0, "c", DType::u8, {1}, "replicated", 1), Error);
    EXPECT_THROW(writer.add_tensor(0, "c", DType::u8, {1}, "replicated", bytes.data(), 1), Error);
    EXPECT_THROW(writer.write(0, 1800, bytes.data(), 1000), Error) << "past the end";
    writer.write(0, a, bytes.data(), 1000);
    try {
      writer.commit(sample_manifest(1));
      ADD_FAILURE() << "commit with tensor b unwritten";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("not completely written"));
    }
  }
  EXPECT_TRUE(entries(tmp.path()).empty()) << "no engine and no temporary";
}

TEST(EngineWriter, ManifestFieldsArePreserved) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  const Manifest written = sample_manifest();
  {
    EngineWriter writer(out, 1, false);
    const float x[2] = {1.5f, -2.5f};
    writer.add_tensor(0, "x", DType::f32, {2}, "replicated", x, sizeof x);
    writer.commit(written);
  }
  const Manifest m = Engine::read_manifest(out);
  EXPECT_EQ(m.format_version, kFormatVersion);
  EXPECT_EQ(m.kiln_version, written.kiln_version);
  EXPECT_EQ(m.target, written.target);
  EXPECT_EQ(m.dtype, DType::bf16);
  EXPECT_EQ(m.tensor_parallel, 2);
  EXPECT_EQ(m.limits.max_batch_size, 3);
  EXPECT_EQ(m.limits.max_input_len, 100);
  EXPECT_EQ(m.limits.max_output_len, 200);
  EXPECT_EQ(m.limits.max_num_tokens, 300);
  EXPECT_EQ(m.source, written.source);
  EXPECT_EQ(m.created, written.created);
  EXPECT_EQ(m.build_seconds, 1.25);
  EXPECT_EQ(m.kernel_choices, written.kernel_choices);
  expect_same_spec(m.spec, written.spec);
  ASSERT_EQ(m.ranks.size(), 1u);  // commit fills the rank table from what was written
  EXPECT_EQ(m.ranks[0].file, "rank0.bin");
  EXPECT_EQ(m.ranks[0].size, 8u);
  EXPECT_EQ(m.total_bytes(), 8u);
}

TEST(EngineWriter, CopiesFilesIntoTheEngine) {
  TempDir tmp;
  const fs::path source = tmp.path() / "tokenizer.json";
  std::ofstream(source) << "{\"model\": {}}";
  const fs::path out = tmp.path() / "engine";
  {
    EngineWriter writer(out, 1, false);
    writer.add_file(source, fs::path("tokenizer") / "tokenizer.json");
    writer.commit(sample_manifest(1));
  }
  std::ifstream in(out / "tokenizer" / "tokenizer.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"model\": {}}");
  EXPECT_THROW(
      {
        EngineWriter writer(tmp.path() / "other", 1, false);
        writer.add_file(tmp.path() / "missing.json", "missing.json");
      },
      Error);
  EXPECT_FALSE(fs::exists(tmp.path() / "other"));
}

TEST(EngineWriter, WithoutCommitLeavesNoDirectoryAndNoTemporary) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  fs::path temporary;
  {
    EngineWriter writer(out, 2, false);
    temporary = writer.temporary_dir();
    EXPECT_TRUE(fs::is_directory(temporary));
    EXPECT_EQ(temporary.parent_path(), tmp.path());
    const float x[3] = {1, 2, 3};
    writer.add_tensor(1, "x", DType::f32, {3}, "replicated", x, sizeof x);
    EXPECT_FALSE(fs::exists(out));  // nothing at the output until commit
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(temporary));
  EXPECT_TRUE(entries(tmp.path()).empty());
}

TEST(EngineWriter, RefusesAnExistingOutputUnlessForced) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  fs::create_directory(out);
  std::ofstream(out / "keep.txt") << "old";
  try {
    EngineWriter writer(out, 1, false);
    ADD_FAILURE() << "existing output accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(out.string()));
    EXPECT_THAT(e.what(), HasSubstr("already exists"));
  }
  EXPECT_TRUE(fs::exists(out / "keep.txt"));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"engine"});
  {
    EngineWriter abandoned(out, 1, true);  // forced, but never committed: the old output stays
  }
  EXPECT_TRUE(fs::exists(out / "keep.txt"));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"engine"});

  {
    EngineWriter writer(out, 1, true);
    const float x = 4.0f;
    writer.add_tensor(0, "x", DType::f32, {1}, "replicated", &x, sizeof x);
    writer.commit(sample_manifest(1));
  }
  EXPECT_FALSE(fs::exists(out / "keep.txt"));  // replaced as a whole
  EXPECT_EQ(entries(out), (std::vector<std::string>{"engine.json", "rank0.bin"}));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"engine"});  // old copy removed
  const Engine engine = Engine::open(out, std::nullopt, OpenCheck::container);
  EXPECT_EQ(*static_cast<const float*>(engine.tensor(0, "x").data), 4.0f);
}

TEST(Engine, RefusesAnotherTargetNamingBoth) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  {
    EngineWriter writer(out, 1, false);
    Manifest m = sample_manifest(1);
    m.target = Target{"cuda", "sm_90"};
    writer.commit(m);
  }
  try {
    Engine::open(out, Target{"cpu", "x86_64"}, OpenCheck::container);
    ADD_FAILURE() << "target mismatch accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cuda sm_90"));
    EXPECT_THAT(e.what(), HasSubstr("cpu x86_64"));
    EXPECT_THAT(e.what(), HasSubstr(out.string()));
  }
  try {
    Engine::open(out, Target{"cuda", "sm_80"}, OpenCheck::container);  // same backend, other architecture
    ADD_FAILURE() << "arch mismatch accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("sm_90"));
    EXPECT_THAT(e.what(), HasSubstr("sm_80"));
  }
  EXPECT_NO_THROW(Engine::open(out, Target{"cuda", "sm_90"}, OpenCheck::container));
  EXPECT_NO_THROW(Engine::open(out, std::nullopt, OpenCheck::container));
}

TEST(Engine, DetectsCorruptedAndTruncatedBlobs) {
  TempDir tmp;
  const fs::path out = tmp.path() / "engine";
  const auto bytes = pattern(1000, 3);
  {
    EngineWriter writer(out, 1, false);
    writer.add_tensor(0, "a", DType::u8, {1000}, "replicated", bytes.data(), bytes.size());
    writer.commit(sample_manifest(1));
  }
  {
    std::fstream f(out / "rank0.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(500);
    const char c = static_cast<char>(bytes[500] ^ 0x01);
    f.write(&c, 1);
  }
  const Engine corrupted = Engine::open(out, std::nullopt, OpenCheck::container);  // same size: opens
  try {
    corrupted.verify_checksums();
    ADD_FAILURE() << "flipped bit not detected";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank0.bin"));
  }
  fs::resize_file(out / "rank0.bin", 999);
  try {
    Engine::open(out, std::nullopt, OpenCheck::container);
    ADD_FAILURE() << "truncated blob accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank0.bin"));
    EXPECT_THAT(e.what(), HasSubstr("999"));
  }
}

TEST(Engine, RefusesOtherFormatVersionsAndMissingManifests) {
  TempDir tmp;
  EXPECT_THROW(Engine::open(tmp.path() / "nothing", std::nullopt, OpenCheck::container), Error);
  try {
    Engine::open(tmp.path(), std::nullopt, OpenCheck::container);
    ADD_FAILURE() << "directory without engine.json accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("engine.json"));
  }
  std::ofstream(tmp.path() / "engine.json") << nlohmann::json{{"format_version", kFormatVersion + 1}}.dump();
  try {
    Engine::open(tmp.path(), std::nullopt, OpenCheck::container);
    ADD_FAILURE() << "future format accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("format version " + std::to_string(kFormatVersion + 1)));
  }
}

}  // namespace
}  // namespace kiln::engine
