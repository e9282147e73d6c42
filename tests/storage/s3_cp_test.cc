// `kiln s3 cp` (the binary) against moto, and interoperability with the aws CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "s3_test_support.h"
#include "support/temp_dir.h"

namespace kiln::storage {
namespace {

using test::MotoServer;

std::string kiln_cp(const MotoServer& server, const std::string& args) {
  return test::aws_env(server.endpoint()) + KILN_BINARY + " s3 cp " + args;
}
std::string aws_cp(const MotoServer& server, const std::string& args) {
  return test::aws_env(server.endpoint()) + "aws --endpoint-url " + server.endpoint() + " s3 cp --only-show-errors " +
         args;
}

TEST(KilnS3Cp, TreeRoundTripIsByteIdentical) {
  MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("trees");
  test::TempDir dir;
  const auto files = test::sample_tree((20 << 20) + 7);  // multipart at the CLI's 8 MiB parts
  test::write_tree(dir / "src", files);

  auto r = test::run_command(kiln_cp(server, (dir / "src").string() + " s3://trees/engine --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("kiln s3 cp: 6 files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("MB/s"), std::string::npos) << r.output;

  r = test::run_command(kiln_cp(server, "s3://trees/engine " + (dir / "dst").string() + " --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  test::expect_tree(dir / "dst", files);

  // Single files both ways, to a prefix and to a directory (the name is kept).
  r = test::run_command(kiln_cp(server, (dir / "src" / "rank1.bin").string() + " s3://trees/single/"));
  ASSERT_EQ(r.status, 0) << r.output;
  std::filesystem::create_directories(dir / "one");
  r = test::run_command(kiln_cp(server, "s3://trees/single/rank1.bin " + (dir / "one").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::read_bytes(dir / "one" / "rank1.bin") == test::read_bytes(dir / "src" / "rank1.bin"));

  r = test::run_command(kiln_cp(server, "s3://trees/single/missing.bin " + (dir / "one").string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("NoSuchKey"), std::string::npos) << r.output;
  r = test::run_command(kiln_cp(server, (dir / "src").string() + " s3://trees/x"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--recursive"), std::string::npos) << r.output;
}

TEST(KilnS3Cp, InteroperatesWithTheAwsCli) {
  if (test::run_command("aws --version").status != 0) GTEST_FAIL() << "the aws CLI is required (pip install awscli)";
  MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("interop");
  test::TempDir dir;
  const auto files = test::sample_tree((17 << 20) + 3);
  test::write_tree(dir / "src", files);

  // kiln uploads, aws downloads.
  auto r = test::run_command(kiln_cp(server, (dir / "src").string() + " s3://interop/by-kiln --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_command(aws_cp(server, "--recursive s3://interop/by-kiln " + (dir / "aws-got").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  test::expect_tree(dir / "aws-got", files);

  // aws uploads (its own multipart above 8 MiB), kiln downloads.
  r = test::run_command(aws_cp(server, "--recursive " + (dir / "src").string() + " s3://interop/by-aws"));
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_command(kiln_cp(server, "s3://interop/by-aws " + (dir / "kiln-got").string() + " --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  test::expect_tree(dir / "kiln-got", files);
}

// In the proxy log: `manifest_path` was requested (with one of `methods`) once,
// after every other such request under `prefix` had been answered.
void expect_manifest_last(const std::filesystem::path& log, const std::string& manifest_path,
                          const std::vector<std::string>& methods, const std::string& prefix) {
  const auto lines = test::read_proxy_log(log);
  int manifest_start = -1, manifest_requests = 0, others = 0;
  const auto counted = [&](const test::ProxyLogLine& l) {
    return std::find(methods.begin(), methods.end(), l.method) != methods.end();
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].kind == "start" && lines[i].path == manifest_path && counted(lines[i])) {
      manifest_start = manifest_start < 0 ? static_cast<int>(i) : manifest_start;
      ++manifest_requests;
    }
  }
  ASSERT_GE(manifest_start, 0) << manifest_path << " was never requested";
  EXPECT_EQ(manifest_requests, 1);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (l.kind != "end" || !counted(l) || l.path == manifest_path || !l.path.starts_with(prefix)) continue;
    ++others;
    EXPECT_LT(static_cast<int>(i), manifest_start) << l.method << " " << l.path << " ended after engine.json started";
  }
  EXPECT_GE(others, 5) << "the other files' requests";
}

// engine.json is uploaded after every other file is stored; when one fails
// for good, engine.json is not uploaded (an old one is removed first) and the
// command fails naming the file.
TEST(KilnS3Cp, RecursiveUploadSendsEngineJsonLastAndNotAtAllOnFailure) {
  MotoServer server;
  S3Client direct(test::test_settings(server.endpoint()));
  direct.create_bucket("order");
  test::TempDir dir;
  const auto files = test::sample_tree((11 << 20) + 7);  // 3 parts at 5 MiB
  test::write_tree(dir / "src", files);
  const auto log = dir.path() / "proxy.log";
  {
    test::FaultProxy proxy(server.port(), 0, {"--log", log.string()});
    const auto r = test::run_command(test::aws_env(proxy.endpoint()) + KILN_BINARY + " s3 cp --part-size-mib 5 " +
                                     (dir / "src").string() + " s3://order/engine --recursive");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  expect_manifest_last(log, "/order/engine/engine.json", {"PUT", "POST"}, "/order/engine/");

  // rank1.bin refused for good: no engine.json, fresh or over an old engine.
  test::FaultProxy refusing(server.port(), 0, {"--deny", "PUT:rank1.bin"});
  for (const std::string dest : {"s3://order/fresh", "s3://order/engine"}) {
    const auto r = test::run_command(test::aws_env(refusing.endpoint()) + KILN_BINARY + " s3 cp --part-size-mib 5 " +
                                     (dir / "src").string() + " " + dest + " --recursive");
    EXPECT_NE(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("upload of rank1.bin failed"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("engine.json not copied"), std::string::npos) << r.output;
    EXPECT_FALSE(direct.head_object(S3Uri::parse(dest + "/engine.json"))) << dest << " has a manifest";
    EXPECT_TRUE(direct.head_object(S3Uri::parse(dest + "/rank0.bin"))) << "the other files were copied";
  }
}

// Downloads too: engine.json arrives after every other file; when one fails,
// the local engine.json is absent (an old one removed) and the command fails.
TEST(KilnS3Cp, RecursiveDownloadFetchesEngineJsonLastAndNotAtAllOnFailure) {
  MotoServer server;
  S3Client direct(test::test_settings(server.endpoint()));
  direct.create_bucket("down");
  test::TempDir dir;
  const auto files = test::sample_tree((11 << 20) + 7);
  test::write_tree(dir / "src", files);
  auto r = test::run_command(kiln_cp(server, (dir / "src").string() + " s3://down/engine --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto log = dir.path() / "proxy.log";
  {
    test::FaultProxy proxy(server.port(), 0, {"--log", log.string()});
    r = test::run_command(test::aws_env(proxy.endpoint()) + KILN_BINARY + " s3 cp --part-size-mib 5 s3://down/engine " +
                          (dir / "dst").string() + " --recursive");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  test::expect_tree(dir / "dst", files);
  expect_manifest_last(log, "/down/engine/engine.json", {"GET"}, "/down/engine/");

  test::FaultProxy refusing(server.port(), 0, {"--deny", "GET:rank1.bin"});
  r = test::run_command(test::aws_env(refusing.endpoint()) + KILN_BINARY + " s3 cp s3://down/engine " +
                        (dir / "dst").string() + " --recursive");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("download of rank1.bin failed"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "dst" / "engine.json")) << "the old engine.json should be gone";
  EXPECT_TRUE(std::filesystem::exists(dir / "dst" / "rank0.bin"));
}

// A download killed mid-file leaves NAME.kiln-partial-PID-RANDOM behind; the
// next copy into that directory removes those whose process is gone, and
// leaves those of a live process alone.
TEST(KilnS3Cp, DownloadsRemoveTemporaryFilesOfAKilledCopy) {
  MotoServer server;
  S3Client direct(test::test_settings(server.endpoint()));
  direct.create_bucket("stale");
  direct.put_object(S3Uri::parse("s3://stale/m/rank0.bin"), test::random_bytes(1000, 4));
  direct.put_object(S3Uri::parse("s3://stale/m/sub/b.bin"), test::random_bytes(1000, 5));
  // A PID that is gone: a child that exited and was reaped.
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  test::TempDir dir;
  const auto dead = [&](const std::string& name) {
    return dir / ("dst/" + name + ".kiln-partial-" + std::to_string(gone) + "-1f2e3d");
  };
  const auto live = dir / ("dst/rank0.bin.kiln-partial-" + std::to_string(::getpid()) + "-abc");
  test::write_bytes(dead("rank0.bin"), "torn");
  test::write_bytes(dead("sub/b.bin"), "torn");
  test::write_bytes(dead("../one/single.bin"), "torn");
  test::write_bytes(live, "in use");
  test::write_bytes(dir / "dst/user.kiln-partial-notes.txt", "not ours");

  auto r = test::run_command(kiln_cp(server, "s3://stale/m " + (dir / "dst").string() + " --recursive"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dead("rank0.bin")));
  EXPECT_FALSE(std::filesystem::exists(dead("sub/b.bin")));
  EXPECT_TRUE(std::filesystem::exists(live)) << "a live process's download was removed";
  EXPECT_TRUE(std::filesystem::exists(dir / "dst/user.kiln-partial-notes.txt"));
  // A single-file download cleans its directory too.
  EXPECT_TRUE(std::filesystem::exists(dead("../one/single.bin")));
  r = test::run_command(kiln_cp(server, "s3://stale/m/rank0.bin " + (dir / "one/single.bin").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dead("../one/single.bin")));
}

}  // namespace
}  // namespace kiln::storage
