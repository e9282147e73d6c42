// The serving engine loop on the llama fixture's engine: jobs submitted from
// several threads get HuggingFace's greedy tokens, cancellation frees the KV
// cache, and a full queue refuses work instead of growing without bound.
#include "serving/engine_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "support/cli_engine.h"
#include "support/temp_dir.h"

namespace kiln::serving {
namespace {

namespace fs = std::filesystem;
const fs::path kLlama = fs::path(KILN_FIXTURES) / "models" / "llama";

class EngineServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_TRUE(test::build_with_cli(kLlama, dir_->path() / "engine", ""));
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    engine_ =
        std::make_unique<engine::Engine>(engine::Engine::open(dir_->path() / "engine", engine::host_cpu_target()));
    backend_ = runtime::make_cpu_backend();
    std::ifstream in(kLlama / "reference.json");
    reference_ = nlohmann::json::parse(in);
  }
  JobRequest request(std::size_t i) const {
    const auto& c = reference_["cases"][i];
    return {c["prompt"].get<std::vector<int32_t>>(), static_cast<int64_t>(c["generated"].size()), {}, false};
  }
  static std::vector<int32_t> collect(Job& job, std::string* reason = nullptr) {
    std::vector<int32_t> tokens;
    for (int i = 0; i < 10000; ++i) {
      auto u = job.take(std::chrono::milliseconds(100));
      tokens.insert(tokens.end(), u.tokens.begin(), u.tokens.end());
      if (u.finished) {
        if (reason) *reason = u.finish_reason;
        break;
      }
    }
    return tokens;
  }
  static test::TempDir* dir_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<runtime::Backend> backend_;
  nlohmann::json reference_;
};
test::TempDir* EngineServiceTest::dir_ = nullptr;

TEST_F(EngineServiceTest, ConcurrentJobsGetHuggingFaceTokens) {
  EngineService service(*engine_, *backend_, {});
  std::vector<std::thread> clients;
  std::vector<std::vector<int32_t>> got(3);
  std::vector<std::string> reasons(3);
  for (std::size_t i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      auto job = service.submit(request(i));
      ASSERT_NE(job, nullptr);
      got[i] = collect(*job, &reasons[i]);
    });
  }
  for (auto& t : clients) t.join();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i], reference_["cases"][i]["generated"].get<std::vector<int32_t>>()) << i;
    EXPECT_EQ(reasons[i], "length");
  }
  // The loop publishes its stats after the step that finished the jobs.
  for (int i = 0; i < 100 && service.stats().kv_blocks_free != service.stats().kv_blocks_total; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service.stats().kv_blocks_free, service.stats().kv_blocks_total);
}

TEST_F(EngineServiceTest, CancelFreesTheSlotAtOnce) {
  EngineService service(*engine_, *backend_, {});
  JobRequest long_job = request(0);
  long_job.max_new_tokens = engine_->manifest().limits.max_output_len;
  auto job = service.submit(long_job);
  ASSERT_NE(job, nullptr);
  ASSERT_FALSE(job->take(std::chrono::seconds(5)).tokens.empty());  // it is running
  service.cancel(job);
  std::string reason;
  collect(*job, &reason);
  EXPECT_EQ(reason, "cancelled");
  for (int i = 0; i < 100 && service.stats().kv_blocks_free != service.stats().kv_blocks_total; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service.stats().kv_blocks_free, service.stats().kv_blocks_total);
  EXPECT_EQ(service.stats().running, 0);
}

TEST_F(EngineServiceTest, FullQueueRefusesInsteadOfGrowing) {
  EngineServiceOptions options;
  options.max_batch_size = 1;
  options.max_queue = 1;
  EngineService service(*engine_, *backend_, options);
  JobRequest long_job = request(0);
  long_job.max_new_tokens = engine_->manifest().limits.max_output_len;
  auto first = service.submit(long_job);
  ASSERT_NE(first, nullptr);
  first->take(std::chrono::seconds(5));  // running, so the next one waits
  // The second fills the queue of one; a third must be refused.
  auto second = service.submit(request(1));
  ASSERT_NE(second, nullptr);
  for (int i = 0; i < 100 && service.stats().waiting == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // until the loop has queued it
  }
  EXPECT_EQ(service.submit(request(2)), nullptr);
  service.cancel(first);
  EXPECT_EQ(collect(*second), reference_["cases"][1]["generated"].get<std::vector<int32_t>>());
}

TEST_F(EngineServiceTest, InvalidRequestsAreRefusedWithAReason) {
  EngineService service(*engine_, *backend_, {});
  JobRequest bad = request(0);
  bad.prompt = {};
  EXPECT_THROW(service.submit(bad), Error);
  bad = request(0);
  bad.prompt.push_back(100000);
  EXPECT_THROW(service.submit(bad), Error);
  bad = request(0);
  bad.max_new_tokens = 0;
  EXPECT_THROW(service.submit(bad), Error);
  bad = request(0);
  bad.sampling.greedy = false;
  bad.sampling.temperature = -1;
  EXPECT_THROW(service.submit(bad), Error);
}

}  // namespace
}  // namespace kiln::serving
