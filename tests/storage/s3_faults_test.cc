// A server that fails some requests (500, 503 SlowDown, dropped connections):
// every transfer is retried and still byte-identical.
#include <gtest/gtest.h>

#include "s3_test_support.h"
#include "storage/sigv4.h"
#include "storage/tree_copy.h"
#include "support/temp_dir.h"

namespace kiln::storage {
namespace {

TEST(S3Faults, TreeCopiesSurviveInjectedFailures) {
  test::MotoServer server;
  S3Client(test::test_settings(server.endpoint())).create_bucket("flaky");
  test::FaultProxy proxy(server.port(), 3);  // every third request fails
  S3Client client(test::test_settings(proxy.endpoint()), test::fast_retries());

  test::TempDir dir;
  const auto files = test::sample_tree((11 << 20) + 5);
  test::write_tree(dir / "src", files);
  TransferOptions options;
  options.part_size = 5 << 20;  // S3's minimum: 3 parts for the large file
  options.multipart_threshold = 5 << 20;
  options.file_concurrency = 3;
  options.part_concurrency = 3;

  const TransferSummary up = upload_tree(client, dir / "src", S3Uri::parse("s3://flaky/t"), options);
  EXPECT_EQ(up.files, 6);
  const TransferSummary down = download_tree(client, S3Uri::parse("s3://flaky/t/"), dir / "dst", options);
  EXPECT_EQ(down.files, 6);
  EXPECT_EQ(down.bytes, up.bytes);
  test::expect_tree(dir / "dst", files);
  EXPECT_GT(client.retries(), 3) << "the proxy should have forced retries";

  // Adaptive mode (throttling holds back every request of the client) gets there too.
  RetryPolicy adaptive = test::fast_retries();
  adaptive.mode = RetryMode::adaptive;
  S3Client adaptive_client(test::test_settings(proxy.endpoint()), adaptive);
  upload_tree(adaptive_client, dir / "src", S3Uri::parse("s3://flaky/adaptive"), options);
  download_tree(adaptive_client, S3Uri::parse("s3://flaky/adaptive/"), dir / "adaptive", options);
  test::expect_tree(dir / "adaptive", files);
  EXPECT_GT(adaptive_client.retries(), 3);

  // Without retries the same server fails, with the injected error named.
  S3Client no_retries(test::test_settings(proxy.endpoint()), RetryPolicy{.max_attempts = 1});
  bool failed = false;
  for (int i = 0; i < 6 && !failed; ++i) {
    try {
      no_retries.get_object(S3Uri::parse("s3://flaky/t/engine.json"));
    } catch (const S3Error& e) {
      failed = true;
      EXPECT_TRUE(e.status() == 0 || e.status() >= 500) << e.what();
    }
  }
  EXPECT_TRUE(failed);
}

}  // namespace
}  // namespace kiln::storage
