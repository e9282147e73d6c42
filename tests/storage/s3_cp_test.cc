// `kiln s3 cp` (the binary) against moto, and interoperability with the aws CLI.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kiln::storage
