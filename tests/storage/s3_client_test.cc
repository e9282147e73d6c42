// The S3 client against a real S3-compatible server (moto) on loopback.
#include "storage/s3_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <functional>

#include "s3_test_support.h"
#include "storage/multipart.h"
#include "storage/parallel.h"
#include "storage/ranged_download.h"
#include "storage/sigv4.h"
#include "support/error_of.h"
#include "support/temp_dir.h"

namespace kiln::storage {
namespace {

using test::MotoServer;

using test::error_of;

TEST(S3ClientTest, PutGetHeadRangeListDelete) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("kiln-test");
  const std::string body = test::random_bytes(100000, 7);
  const S3Uri uri = S3Uri::parse("s3://kiln-test/dir/a b+c&d.bin");
  client.put_object(uri, body);
  EXPECT_TRUE(client.get_object(uri) == body);

  const auto info = client.head_object(uri);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, 100000);
  EXPECT_EQ(info->etag.size(), 32u);  // MD5 of a single-part object, quotes stripped
  EXPECT_FALSE(client.head_object(S3Uri::parse("s3://kiln-test/dir/none")).has_value());

  test::TempDir dir;
  const int fd = ::open((dir / "range").c_str(), O_RDWR | O_CREAT, 0644);
  client.get_object_range_to_fd(uri, 1000, 500, fd, 10);
  ::close(fd);
  const std::string got = test::read_bytes(dir / "range");
  ASSERT_EQ(got.size(), 510u);
  EXPECT_EQ(got.substr(10), body.substr(1000, 500));

  client.put_object(S3Uri::parse("s3://kiln-test/dir/empty"), "");
  const auto listed = client.list_objects("kiln-test", "dir/");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].key, "dir/a b+c&d.bin");  // XML-escaped by the server, decoded here
  EXPECT_EQ(listed[0].size, 100000);
  EXPECT_EQ(listed[0].etag, info->etag);
  EXPECT_EQ(listed[1].size, 0);

  client.delete_object(uri);
  EXPECT_FALSE(client.head_object(uri).has_value());
  EXPECT_EQ(client.retries(), 0);
}

TEST(S3ClientTest, MissingBucketAndMissingKeyAreNamed) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("present");
  std::string e = error_of([&] { client.get_object(S3Uri::parse("s3://absent-bucket/k")); });
  EXPECT_NE(e.find("NoSuchBucket"), std::string::npos) << e;
  EXPECT_NE(e.find("bucket 'absent-bucket' does not exist"), std::string::npos) << e;
  e = error_of([&] { client.get_object(S3Uri::parse("s3://present/no/such/key")); });
  EXPECT_NE(e.find("NoSuchKey"), std::string::npos) << e;
  EXPECT_NE(e.find("key 'no/such/key' in bucket 'present'"), std::string::npos) << e;
  EXPECT_NE(e.find("404"), std::string::npos) << e;

  // Downloads go through HEAD (no body), and still say which one is missing.
  test::TempDir dir;
  e = error_of([&] { download_file(client, S3Uri::parse("s3://present/nope"), dir / "x", {}); });
  EXPECT_NE(e.find("NoSuchKey"), std::string::npos) << e;
  e = error_of([&] { download_file(client, S3Uri::parse("s3://absent-bucket/nope"), dir / "x", {}); });
  EXPECT_NE(e.find("NoSuchBucket"), std::string::npos) << e;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a failed download left a file behind";
  e = error_of([&] { client.list_objects("absent-bucket", ""); });
  EXPECT_NE(e.find("NoSuchBucket"), std::string::npos) << e;
}

// An object overwritten between its listing and its ranged GETs: every GET
// carries the listing's ETag (If-Match), the server answers 412, and the
// download fails naming the object, never splicing two versions' bytes.
TEST(S3ClientTest, AnObjectChangedUnderADownloadFailsInsteadOfSplicing) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("kiln-test");
  const S3Uri uri = S3Uri::parse("s3://kiln-test/rank0.bin");
  client.put_object(uri, test::random_bytes(300000, 1));
  const auto listed = client.head_object(uri);
  ASSERT_TRUE(listed.has_value());
  const std::string replacement = test::random_bytes(300000, 2);  // same size, other bytes
  client.put_object(uri, replacement);

  test::TempDir dir;
  TransferOptions options;
  options.multipart_threshold = 100000;
  options.part_size = 100000;
  const std::string e =
      error_of([&] { download_file(client, uri, dir / "rank0.bin", options, listed->size, listed->etag); });
  EXPECT_NE(e.find("s3://kiln-test/rank0.bin changed while it was being downloaded"), std::string::npos) << e;
  EXPECT_NE(e.find(listed->etag), std::string::npos) << e;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a failed download left a file behind";
  EXPECT_EQ(client.retries(), 0) << "a changed object is not retried";

  // The current ETag (a download without a listing HEADs for it) gets the new bytes.
  EXPECT_EQ(download_file(client, uri, dir / "rank0.bin", options), 300000);
  EXPECT_TRUE(test::read_bytes(dir / "rank0.bin") == replacement);
  const auto current = client.head_object(uri);
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(download_file(client, uri, dir / "again.bin", options, current->size, current->etag), 300000);
}

TEST(S3ClientTest, WrongCredentialsNameTheirSource) {
  // moto checks access keys once INITIAL_NO_AUTH_ACTION_COUNT requests have passed: 0 means all.
  MotoServer server(std::vector<std::pair<std::string, std::string>>{{"INITIAL_NO_AUTH_ACTION_COUNT", "0"}});
  S3Settings settings = test::test_settings(server.endpoint());
  settings.credentials.access_key_id = "AKIAWRONGWRONGWRONG0";
  settings.credentials.source = "profile 'broken' in /home/me/.aws/credentials";
  S3Client client(settings, test::fast_retries());
  const std::string e = error_of([&] { client.get_object(S3Uri::parse("s3://some-bucket/some/key")); });
  EXPECT_NE(e.find("403"), std::string::npos) << e;
  EXPECT_NE(e.find("InvalidAccessKeyId"), std::string::npos) << e;
  EXPECT_NE(e.find("profile 'broken' in /home/me/.aws/credentials"), std::string::npos) << e;
  EXPECT_NE(e.find("key 'some/key' in bucket 'some-bucket'"), std::string::npos) << e;
  EXPECT_EQ(client.retries(), 0) << "403 is not retried";
}

TEST(S3ClientTest, ListingPaginatesPastAThousandKeys) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("many");
  constexpr int kKeys = 1030;
  parallel_tasks(kKeys, 8, [&](int64_t i) {
    client.put_object(S3Uri{"many", concat("p/", 10000 + i)}, std::to_string(i));
  });
  client.put_object(S3Uri{"many", "other/x"}, "not listed");
  const auto objects = client.list_objects("many", "p/");
  ASSERT_EQ(objects.size(), static_cast<std::size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(objects[static_cast<std::size_t>(i)].key, concat("p/", 10000 + i));
    EXPECT_EQ(objects[static_cast<std::size_t>(i)].size, static_cast<int64_t>(std::to_string(i).size()));
  }
}

TEST(S3ClientTest, MultipartUploadAndParallelRangedDownloadOfALargeFile) {
  MotoServer server;
  S3Client client(test::test_settings(server.endpoint()), test::fast_retries());
  client.create_bucket("big");
  test::TempDir dir;
  const std::string bytes = test::random_bytes((65 << 20) + 12345, 42);  // > 64 MiB, ragged last part
  test::write_bytes(dir / "in.bin", bytes);
  TransferOptions options;  // 8 MiB parts: 9 of them
  std::atomic<int64_t> progress{0};
  options.on_bytes = [&](int64_t n) { progress += n; };
  const S3Uri uri = S3Uri::parse("s3://big/model/rank0.bin");
  EXPECT_EQ(upload_file(client, dir / "in.bin", uri, options), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(progress.load(), static_cast<int64_t>(bytes.size()));
  const auto info = client.head_object(uri);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, static_cast<int64_t>(bytes.size()));
  EXPECT_TRUE(info->etag.ends_with("-9")) << "not a 9-part multipart object: " << info->etag;
  EXPECT_EQ(download_file(client, uri, dir / "out" / "rank0.bin", options), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(sha256_hex(test::read_bytes(dir / "out" / "rank0.bin")), sha256_hex(bytes));
}

}  // namespace
}  // namespace kiln::storage
