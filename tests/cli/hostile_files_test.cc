// Engines and checkpoints edited as an attacker or an unlucky operator would:
// every command refuses them with a message naming the field at fault and exit
// status 1, never a crash (signal), a hang or an unbounded allocation. The
// edits are the ones that crashed or hung kiln before engine.json and
// config.json were validated (rotary_dim past the head, a negative batch size,
// an offset that wraps the bounds check, zero heads, a flipped byte).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include "cli_test_util.h"

namespace kiln::test {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// Commands get a time limit, so that a hang fails the test instead of the suite.
RunResult run_bounded(const std::string& args) { return run_kiln_with_timeout(args, 60); }

class HostileEngine : public LlamaEngineSuite {
 protected:
  // A copy of the suite's engine with `edit` applied to its engine.json.
  fs::path edited(const std::function<void(Json&)>& edit) {
    const fs::path copy = tmp_.path() / ("engine" + std::to_string(++copies_));
    fs::copy(engine(), copy, fs::copy_options::recursive);
    Json j = read_json(copy / "engine.json");
    edit(j);
    write_text(copy / "engine.json", j.dump());
    return copy;
  }

  // generate and inspect --check both refuse `dir`, naming `expected`.
  void expect_refused(const fs::path& dir, const std::string& expected) {
    const auto generate = run_bounded("generate --engine " + dir.string() + " --input-ids 1,2,3 --max-new-tokens 4");
    EXPECT_EQ(generate.status, 1) << generate.output;
    EXPECT_THAT(generate.output, HasSubstr(expected));
    const auto inspect = run_bounded("inspect --check " + dir.string());
    EXPECT_EQ(inspect.status, 1) << inspect.output;
    EXPECT_THAT(inspect.output, HasSubstr(expected));
  }

  TempDir tmp_;
  int copies_ = 0;
};

TEST_F(HostileEngine, RotaryDimPastTheHead) {
  expect_refused(edited([](Json& j) { j["model"]["rope"]["rotary_dim"] = 255; }), "model.rope.rotary_dim (255)");
}

TEST_F(HostileEngine, NegativeBatchSize) {
  expect_refused(edited([](Json& j) { j["limits"]["max_batch_size"] = -1; }), "limits.max_batch_size (-1)");
}

TEST_F(HostileEngine, OffsetThatWrapsTheBoundsCheck) {
  expect_refused(edited([](Json& j) {
                   Json& t = j["ranks"][0]["tensors"][1];
                   t["offset"] = std::numeric_limits<uint64_t>::max() - t["nbytes"].get<uint64_t>() + 1;
                 }),
                 "lies outside the blob");
}

TEST_F(HostileEngine, ZeroHeads) {
  expect_refused(edited([](Json& j) { j["model"]["num_heads"] = 0; }), "model.num_heads (0)");
}

TEST_F(HostileEngine, KvHeadsThatDoNotDivideTheHeads) {
  expect_refused(edited([](Json& j) { j["model"]["num_kv_heads"] = j["model"]["num_heads"].get<int64_t>() - 1; }),
                 "model.num_heads");
}

TEST_F(HostileEngine, DimensionsThatDisagreeWithTheTensorTable) {
  expect_refused(
      edited([](Json& j) { j["model"]["intermediate_size"] = j["model"]["intermediate_size"].get<int64_t>() * 2; }),
      "but the model implies");
  expect_refused(edited([](Json& j) { j["model"]["num_layers"] = j["model"]["num_layers"].get<int64_t>() + 1; }),
                 "has no tensor 'layers.");
}

TEST_F(HostileEngine, NumbersThatDoNotFitTheirField) {
  expect_refused(edited([](Json& j) { j["tensor_parallel"] = int64_t{1} << 32 | 1; }), "tensor_parallel");
  expect_refused(edited([](Json& j) { j["model"]["vocab_size"] = 1.5; }), "model.vocab_size must be an integer");
  expect_refused(edited([](Json& j) { j["limits"]["max_input_len"] = std::numeric_limits<uint64_t>::max(); }),
                 "limits.max_input_len");
}

TEST_F(HostileEngine, RankFileOutsideTheEngine) {
  expect_refused(edited([](Json& j) { j["ranks"][0]["file"] = "../../etc/passwd"; }), "ranks[0].file");
}

TEST_F(HostileEngine, ExpertsPerTokenAboveTheExperts) {
  expect_refused(edited([](Json& j) {
                   j["model"]["num_experts"] = 2;
                   j["model"]["experts_per_token"] = 3;
                 }),
                 "model.experts_per_token (3)");
}

// A flipped byte in the blob: refused while loading (no --check needed), and
// accepted when the user opts out of the check.
TEST_F(HostileEngine, FlippedWeightByteIsRefusedAtLoad) {
  const fs::path dir = edited([](Json&) {});
  {
    std::fstream blob(dir / "rank0.bin", std::ios::in | std::ios::out | std::ios::binary);
    blob.seekg(4096);
    const char byte = static_cast<char>(blob.get());
    blob.seekp(4096);
    blob.put(static_cast<char>(byte ^ 0x10));
  }
  const std::string args = "generate --engine " + dir.string() + " --input-ids 1,2,3 --max-new-tokens 4";
  const auto refused = run_bounded(args);
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("does not match its checksum"));
  const auto unchecked = run_bounded(args + " --no-verify-weights");
  EXPECT_EQ(unchecked.status, 0) << unchecked.output;
}

// config.json edited the same way: build refuses it at once, naming the key.
class HostileConfig : public ::testing::Test {
 protected:
  // A checkpoint whose weights are the fixture's (linked) and whose config is edited.
  fs::path edited(const std::string& name, const std::function<void(Json&)>& edit) {
    const fs::path dir = tmp_.path() / ("checkpoint" + std::to_string(++copies_));
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(fixture(name))) {
      if (entry.path().filename() != "config.json") fs::create_symlink(entry.path(), dir / entry.path().filename());
    }
    Json config = read_json(fs::path(fixture(name)) / "config.json");
    edit(config);
    write_text(dir / "config.json", config.dump());
    return dir;
  }

  void expect_refused(const fs::path& checkpoint, const std::string& expected) {
    const auto r = run_bounded("build --model " + checkpoint.string() + " --output " +
                               (tmp_.path() / "engine").string() + " --target cpu");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr(expected));
    EXPECT_FALSE(fs::exists(tmp_.path() / "engine"));
  }

  TempDir tmp_;
  int copies_ = 0;
};

TEST_F(HostileConfig, MoreExpertsPerTokenThanExperts) {
  expect_refused(edited("mixtral", [](Json& c) { c["num_experts_per_tok"] = 5; }), "num_experts_per_tok (5)");
}

TEST_F(HostileConfig, LayerCountNearTwoToTheThirtyOne) {
  expect_refused(edited("llama", [](Json& c) { c["num_hidden_layers"] = 2147483647; }),
                 "num_hidden_layers (2147483647)");
  expect_refused(edited("llama", [](Json& c) { c["num_hidden_layers"] = 1000; }), "num_hidden_layers (1000)");
}

TEST_F(HostileConfig, NumbersThatOverflow) {
  expect_refused(edited("llama", [](Json& c) { c["hidden_size"] = std::numeric_limits<uint64_t>::max(); }),
                 "hidden_size");
  expect_refused(edited("llama", [](Json& c) { c["max_position_embeddings"] = 1e300; }), "max_position_embeddings");
}

}  // namespace
}  // namespace kiln::test
