// The S3 flow of the LMI container, in kiln: a checkpoint in S3 compiled to an
// engine in S3 (engine.json last), served from S3 through the download cache
// (reused while the objects are unchanged). Against moto on loopback; expected
// text from the demo model's PyTorch reference.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "s3_test_support.h"
#include "storage/model_store.h"
#include "support/temp_dir.h"

namespace kiln::storage {
namespace {

using test::MotoServer;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Served {
  int pid = 0;
  int port = 0;  // 0: it did not become ready
};

// kiln serve on an ephemeral port, once its model is ready.
Served start_serve(const std::string& env, const std::filesystem::path& log, const std::string& model) {
  Served s;
  const auto r = test::run_command(env + "OPTION_MODEL_ID=" + model + " " + KILN_BINARY +
                                   " serve --host 127.0.0.1 --port 0 > '" + log.string() + "' 2>&1 & echo $!");
  s.pid = std::atoi(r.output.c_str());
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string text = slurp(log);
    const auto at = text.find("listening on 127.0.0.1:");
    if (at != std::string::npos && text.find(") ready") != std::string::npos) {
      s.port = std::atoi(text.c_str() + at + 23);
      break;
    }
    if (text.find("error:") != std::string::npos) break;
  }
  return s;
}

// SIGTERM to this server only (other tests run servers too), then wait for it to go.
void stop_serve(const Served& s) {
  if (s.pid > 0)
    test::run_command("kill -TERM " + std::to_string(s.pid) + "; while kill -0 " + std::to_string(s.pid) +
                      " 2>/dev/null; do sleep 0.05; done");
}

// The demo model's reference continuation of "Love is" (24 tokens, greedy).
std::string love_is_reference(const std::string& demo) {
  const auto ref = nlohmann::json::parse(slurp(demo + "/reference.json"));
  const std::string text = ref["cases"][2]["generated_text"].get<std::string>();
  return text.substr(0, text.find("<|endoftext|>"));
}

// A served model's answer to "Love is" over LMI (null when it is not JSON).
nlohmann::json ask_love_is(const Served& served) {
  const auto r =
      test::run_command("curl -sS -X POST http://127.0.0.1:" + std::to_string(served.port) +
                        "/invocations -d '{\"inputs\": \"Love is\", \"parameters\": {\"max_new_tokens\": 24}}'");
  return nlohmann::json::parse(r.output, nullptr, false);
}

// kiln serve on `model`, asked "Love is" once, then stopped: its answer, or
// null when it did not start or did not answer with JSON (the log says why).
nlohmann::json serve_and_ask(const std::string& env, const std::filesystem::path& log, const std::string& model) {
  const Served served = start_serve(env, log, model);
  nlohmann::json answer;
  if (served.port != 0) answer = ask_love_is(served);
  stop_serve(served);
  return answer;
}

TEST(S3Models, BuildFromS3ToS3ThenServeFromS3) {
  MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("models");
  test::TempDir home;
  const std::string env = test::aws_env(server.endpoint()) + "HOME=" + home.path().string() + " ";
  const std::string demo = std::string(KILN_SOURCE_DIR) + "/demo/model";

  auto r = test::run_command(env + KILN_BINARY + " s3 cp " + demo + " s3://models/demo-hf --recursive");
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_command(env + KILN_BINARY + " build --model s3://models/demo-hf --output s3://models/demo-engine");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("downloading s3://models/demo-hf/"), std::string::npos) << r.output;
  // engine.json is there, and was the last object written.
  S3Client client(test::test_settings(server.endpoint()));
  const auto objects = client.list_objects("models", "demo-engine/");
  ASSERT_FALSE(objects.empty());
  EXPECT_TRUE(client.head_object(S3Uri::parse("s3://models/demo-engine/engine.json")).has_value());
  // Building again reuses the cached checkpoint and refuses to overwrite the engine without --force.
  r = test::run_command(env + KILN_BINARY + " build --model s3://models/demo-hf --output s3://models/demo-engine");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("reusing the cached copy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("already holds an engine; pass --force"), std::string::npos) << r.output;

  // Serve the engine straight from S3.
  const std::string expected = love_is_reference(demo);
  for (int start = 0; start < 2; ++start) {
    const auto log = home.path() / ("serve" + std::to_string(start) + ".log");
    const auto answer = serve_and_ask(env, log, "s3://models/demo-engine");
    ASSERT_TRUE(answer.is_object()) << slurp(log);
    EXPECT_EQ(answer["generated_text"], expected);
    EXPECT_NE(slurp(log).find(start == 0 ? "downloading s3://models/demo-engine/" : "reusing the cached copy"),
              std::string::npos)
        << slurp(log);
  }
}

// A cached engine damaged on disk after its download (a flipped byte) is not
// served: the next start notices it while verifying and downloads it again.
TEST(S3Models, ServeReplacesADamagedCachedEngine) {
  MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("models");
  test::TempDir home;
  const std::string env = test::aws_env(server.endpoint()) + "HOME=" + home.path().string() + " ";
  const std::string demo = std::string(KILN_SOURCE_DIR) + "/demo/model";
  auto r = test::run_command(env + KILN_BINARY + " build --model " + demo + " --output s3://models/engine");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string expected = love_is_reference(demo);
  for (int start = 0; start < 2; ++start) {
    const auto log = home.path() / ("serve" + std::to_string(start) + ".log");
    const auto answer = serve_and_ask(env, log, "s3://models/engine");
    ASSERT_TRUE(answer.is_object()) << slurp(log);
    EXPECT_EQ(answer["generated_text"], expected);
    if (start == 1) {
      EXPECT_NE(slurp(log).find("is damaged"), std::string::npos) << slurp(log);
      EXPECT_NE(slurp(log).find("downloading s3://models/engine/"), std::string::npos) << slurp(log);
      break;
    }
    // Damage the cached copy between the two starts.
    const auto blob = home.path() / ".cache" / "kiln" / "s3" / "models" / "engine" / "rank0.bin";
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open()) << blob;
    f.seekg(1000);
    const char byte = static_cast<char>(f.get());
    f.seekp(1000);
    f.put(static_cast<char>(byte ^ 1));
  }
}

// `kiln build --output s3://` stages the engine in $TMPDIR/kiln-build-PID; a
// build killed there leaves it, and the next build removes it.
TEST(S3Models, BuildToS3RemovesTheStagingOfAKilledBuild) {
  MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("models");
  test::TempDir home;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const auto stale = home.path() / ("kiln-build-" + std::to_string(child));
  std::filesystem::create_directories(stale / "engine");
  std::ofstream(stale / "engine" / "rank0.bin") << "half an engine";
  const std::string env =
      test::aws_env(server.endpoint()) + "HOME=" + home.path().string() + " TMPDIR=" + home.path().string() + " ";
  const std::string demo = std::string(KILN_SOURCE_DIR) + "/demo/model";
  const auto r = test::run_command(env + KILN_BINARY + " build --model " + demo + " --output s3://models/engine");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(std::filesystem::exists(stale));
  for (const auto& entry : std::filesystem::directory_iterator(home.path())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with("kiln-build-")) << entry.path();  // its own is gone too
  }
}

}  // namespace
}  // namespace kiln::storage

namespace kiln::storage {
namespace {

TEST(S3Models, InterruptedDownloadResumesAndUnchangedCopiesAreReused) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("resume");
  const std::string a = test::random_bytes(300000, 1), b = test::random_bytes(200000, 2),
                    c = test::random_bytes(1000, 3);
  client.put_object(S3Uri::parse("s3://resume/m/a.bin"), a);
  client.put_object(S3Uri::parse("s3://resume/m/sub/b.bin"), b);
  client.put_object(S3Uri::parse("s3://resume/m/c.txt"), c);
  test::TempDir cache;
  // An earlier attempt finished a.bin (recorded with its ETag) and left a torn b.bin (no record).
  const auto partial = cache.path() / "s3" / "resume" / "m.partial";
  std::filesystem::create_directories(partial / "sub");
  const std::string kept(a.size(), 'k');  // same size, recorded: must be kept, not fetched again
  test::write_bytes(partial / "a.bin", kept);
  const auto listing = client.list_objects("resume", "m/");
  for (const auto& o : listing) {
    if (o.key == "m/a.bin") test::write_bytes(partial / "a.bin.kiln-etag", o.etag + "\n");
  }
  test::write_bytes(partial / "sub" / "b.bin", std::string(b.size(), 't'));

  const auto dir = fetch_prefix_cached(client, S3Uri::parse("s3://resume/m"), cache.path());
  EXPECT_EQ(test::read_bytes(dir / "a.bin"), kept) << "a file finished earlier must not be downloaded again";
  EXPECT_EQ(test::read_bytes(dir / "sub" / "b.bin"), b) << "an unrecorded file must be downloaded";
  EXPECT_EQ(test::read_bytes(dir / "c.txt"), c);
  EXPECT_FALSE(std::filesystem::exists(partial));
  EXPECT_FALSE(std::filesystem::exists(dir / "a.bin.kiln-etag"));

  // Unchanged objects: the same directory, nothing fetched. A changed object: fetched again.
  std::filesystem::remove(dir / "c.txt");
  test::write_bytes(dir / "c.txt", c);
  EXPECT_EQ(fetch_prefix_cached(client, S3Uri::parse("s3://resume/m"), cache.path()), dir);
  client.put_object(S3Uri::parse("s3://resume/m/c.txt"), c + "changed");
  fetch_prefix_cached(client, S3Uri::parse("s3://resume/m"), cache.path());
  EXPECT_EQ(test::read_bytes(dir / "c.txt"), c + "changed");
  EXPECT_EQ(test::read_bytes(dir / "sub" / "b.bin"), b);
}

// A cache download that fails part way (one object refused for good) leaves no
// directory that could pass for a copy; the next attempt completes it, and
// removes what a killed process left in the partial copy.
TEST(S3Models, AnInterruptedCacheDownloadIsNeverTakenForACopy) {
  MotoServer server;
  S3Client direct(test::test_settings(server.endpoint()), test::fast_retries());
  direct.create_bucket("cache");
  const std::vector<std::pair<std::string, std::string>> files{
      {"engine.json", "{\"format\": 1}\n"}, {"rank0.bin", test::random_bytes(300000, 1)}, {"tokenizer/t.json", "{}"}};
  for (const auto& [rel, bytes] : files) direct.put_object(S3Uri::parse("s3://cache/m/" + rel), bytes);
  test::TempDir cache;
  const auto dir = cache.path() / "s3" / "cache" / "m";
  {
    test::FaultProxy refusing(server.port(), 0, {"--deny", "GET:rank0.bin"});
    S3Client client(test::test_settings(refusing.endpoint()), test::fast_retries());
    EXPECT_THROW(fetch_prefix_cached(client, S3Uri::parse("s3://cache/m"), cache.path()), Error);
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << "a failed download must not look like a copy";
  // What a process killed mid-file leaves: a temporary file named with its (now gone) PID.
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  const auto torn = dir.parent_path() / ("m.partial/rank0.bin.kiln-partial-" + std::to_string(gone) + "-9a");
  test::write_bytes(torn, "torn");

  EXPECT_EQ(fetch_prefix_cached(direct, S3Uri::parse("s3://cache/m"), cache.path()), dir);
  std::vector<std::pair<std::string, std::string>> expected(files.begin(), files.end());
  expected.emplace_back(".kiln-s3-objects.json", test::read_bytes(dir / ".kiln-s3-objects.json"));
  test::expect_tree(dir, expected);
}

// Processes starting on one model at once (threads here) wait for one another
// instead of filling one .partial together: each gets the complete copy.
TEST(S3Models, ConcurrentCacheDownloadsEachGetACompleteCopy) {
  MotoServer server;
  S3Client direct(test::test_settings(server.endpoint()), test::fast_retries());
  direct.create_bucket("shared");
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 12; ++i) {
    files.emplace_back("rank" + std::to_string(i) + ".bin", test::random_bytes(200000, static_cast<uint64_t>(i)));
  }
  for (const auto& [rel, bytes] : files) direct.put_object(S3Uri::parse("s3://shared/m/" + rel), bytes);
  test::TempDir cache;
  std::vector<std::string> problems(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < problems.size(); ++t) {
    threads.emplace_back([&, t] {
      try {
        S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
        TransferOptions options;
        options.file_concurrency = 2;
        const auto dir = fetch_prefix_cached(client, S3Uri::parse("s3://shared/m"), cache.path(), options);
        for (const auto& [rel, bytes] : files) {
          if (test::read_bytes(dir / rel) != bytes) problems[t] += rel + " incomplete; ";
        }
      } catch (const std::exception& e) {
        problems[t] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t t = 0; t < problems.size(); ++t) EXPECT_EQ(problems[t], "") << "thread " << t;
}

}  // namespace
}  // namespace kiln::storage
