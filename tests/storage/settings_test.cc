// URIs, credentials and endpoints resolved from a given environment and files.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/error.h"
#include "storage/credentials.h"
#include "storage/retry_policy.h"
#include "storage/s3_settings.h"
#include "storage/s3_uri.h"
#include "storage/xml.h"
#include "support/temp_dir.h"

namespace kiln::storage {
namespace {

TEST(S3UriTest, ParsesAndFormats) {
  const S3Uri u = S3Uri::parse("s3://my-bucket/models/llama/");
  EXPECT_EQ(u.bucket, "my-bucket");
  EXPECT_EQ(u.key, "models/llama/");
  EXPECT_EQ(u.str(), "s3://my-bucket/models/llama/");
  EXPECT_EQ(u.child("rank0.bin").key, "models/llama/rank0.bin");
  EXPECT_EQ(S3Uri::parse("s3://bkt").key, "");
  EXPECT_EQ(S3Uri::parse("s3://bkt/a").prefix(), "a/");
  EXPECT_EQ(S3Uri::parse("s3://bkt/a").child("b").str(), "s3://bkt/a/b");
}

TEST(S3UriTest, ErrorsNameTheUri) {
  for (const char* bad : {"/local/path", "s3://", "s3:///key", "s3://a/key", "s3://bad bucket/k"}) {
    try {
      S3Uri::parse(bad);
      ADD_FAILURE() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(Credentials, EnvironmentWins) {
  const Environment env{{"AWS_ACCESS_KEY_ID", "AK"},
                        {"AWS_SECRET_ACCESS_KEY", "SK"},
                        {"AWS_SESSION_TOKEN", "T"},
                        {"HOME", "/nonexistent"}};
  const Credentials c = resolve_credentials(env);
  EXPECT_EQ(c.access_key_id, "AK");
  EXPECT_EQ(c.session_token, "T");
  EXPECT_EQ(c.source, "environment (AWS_ACCESS_KEY_ID)");
}

TEST(Credentials, ProfilesFromTheSharedFiles) {
  test::TempDir dir;
  test::write_file(dir / "credentials",
                   "[default]\naws_access_key_id = DEF\naws_secret_access_key = DEFSECRET\n\n"
                   "# a comment\n[dev]\naws_access_key_id=DEV\naws_secret_access_key = DEVSECRET\n"
                   "aws_session_token = TOK\n");
  test::write_file(dir / "config",
                   "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\n"
                   "endpoint_url = http://localhost:9000/\n[profile cfgonly]\naws_access_key_id = CFG\n"
                   "aws_secret_access_key = CFGSECRET\n");
  Environment env{{"AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").string()},
                  {"AWS_CONFIG_FILE", (dir / "config").string()}};
  Credentials c = resolve_credentials(env);
  EXPECT_EQ(c.access_key_id, "DEF");
  EXPECT_EQ(c.source, "profile 'default' in " + (dir / "credentials").string());
  S3Settings s = resolve_s3_settings(env);
  EXPECT_EQ(s.region, "eu-west-1");
  EXPECT_EQ(s.endpoint, "");

  env["AWS_PROFILE"] = "dev";
  s = resolve_s3_settings(env);
  EXPECT_EQ(s.credentials.access_key_id, "DEV");
  EXPECT_EQ(s.credentials.session_token, "TOK");
  EXPECT_EQ(s.region, "ap-south-1");
  EXPECT_EQ(s.endpoint, "http://localhost:9000");

  env["AWS_PROFILE"] = "cfgonly";
  c = resolve_credentials(env);
  EXPECT_EQ(c.access_key_id, "CFG");
  EXPECT_EQ(c.source, "profile 'cfgonly' in " + (dir / "config").string());

  env["AWS_PROFILE"] = "missing";
  try {
    resolve_credentials(env);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("profile 'missing'"), std::string::npos) << e.what();
  }
}

TEST(S3SettingsTest, RegionAndEndpointFromTheEnvironment) {
  Environment env{{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}, {"HOME", "/nonexistent"}};
  EXPECT_EQ(resolve_s3_settings(env).region, "us-east-1");
  env["AWS_DEFAULT_REGION"] = "us-west-2";
  EXPECT_EQ(resolve_s3_settings(env).region, "us-west-2");
  env["AWS_REGION"] = "eu-central-1";
  EXPECT_EQ(resolve_s3_settings(env).region, "eu-central-1");
  env["AWS_ENDPOINT_URL"] = "http://general:1";
  EXPECT_EQ(resolve_s3_settings(env).endpoint, "http://general:1");
  env["AWS_ENDPOINT_URL_S3"] = "http://s3only:2/";
  EXPECT_EQ(resolve_s3_settings(env).endpoint, "http://s3only:2");
}

TEST(S3SettingsTest, VirtualHostedOnAwsPathStyleOnCustomEndpoints) {
  S3Settings s;
  s.region = "eu-west-1";
  S3Target t = s3_target(s, "bkt", "a b/c.bin", "");
  EXPECT_EQ(t.url, "https://bkt.s3.eu-west-1.amazonaws.com/a%20b/c.bin");
  EXPECT_EQ(t.host, "bkt.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(t.canonical_uri, "/a%20b/c.bin");
  s.endpoint = "http://127.0.0.1:9000";
  t = s3_target(s, "bkt", "k", "list-type=2");
  EXPECT_EQ(t.url, "http://127.0.0.1:9000/bkt/k?list-type=2");
  EXPECT_EQ(t.host, "127.0.0.1:9000");
  EXPECT_EQ(t.canonical_uri, "/bkt/k");
}

TEST(RetryPolicyTest, FromTheEnvironmentOrTheConfigFile) {
  test::TempDir dir;
  Environment env{{"AWS_ACCESS_KEY_ID", "AK"},
                  {"AWS_SECRET_ACCESS_KEY", "SK"},
                  {"HOME", "/nonexistent"},
                  {"AWS_CONFIG_FILE", (dir / "config").string()}};
  // The default rides out a minute of outage, whatever the attempt count.
  RetryPolicy p = resolve_s3_settings(env).retry;
  EXPECT_EQ(p.mode, RetryMode::standard);
  EXPECT_EQ(p.max_attempts, 0);
  EXPECT_GE(p.retry_window, std::chrono::seconds(30));
  EXPECT_LE(p.max_delay, std::chrono::seconds(5));

  test::write_file(dir / "config",
                   "[default]\nretry_mode = adaptive\nmax_attempts = 7\n[profile old]\nretry_mode = legacy\n");
  p = resolve_s3_settings(env).retry;
  EXPECT_EQ(p.mode, RetryMode::adaptive);
  EXPECT_EQ(p.max_attempts, 7);
  EXPECT_EQ(p.retry_window.count(), 0) << "a given attempt count replaces the window";
  env["AWS_PROFILE"] = "old";
  p = resolve_s3_settings(env).retry;
  EXPECT_EQ(p.mode, RetryMode::legacy);
  EXPECT_EQ(p.max_attempts, 5) << "legacy: the aws CLI's 5 attempts";

  // The environment wins over the file.
  env["AWS_RETRY_MODE"] = "Standard";
  env["AWS_MAX_ATTEMPTS"] = "3";
  p = resolve_s3_settings(env).retry;
  EXPECT_EQ(p.mode, RetryMode::standard);
  EXPECT_EQ(p.max_attempts, 3);
  env["AWS_MAX_ATTEMPTS"] = "1";
  EXPECT_EQ(resolve_s3_settings(env).retry.max_attempts, 1);

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"AWS_MAX_ATTEMPTS", "0"}, {"AWS_MAX_ATTEMPTS", "three"}, {"AWS_RETRY_MODE", "fast"}}) {
    Environment bad = env;
    bad[name] = value;
    try {
      resolve_s3_settings(bad);
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(RetryPolicyTest, FullJitterBackoffWithinTheAttemptsOrTheWindow) {
  // Caps double from base_delay up to max_delay; full jitter scales them by [0, 1).
  const RetryPolicy standard;
  RetrySchedule s(standard);
  const std::vector<int64_t> caps{250, 500, 1000, 2000, 4000, 5000, 5000};
  for (const int64_t cap : caps) EXPECT_EQ(s.next_delay(1.0).value().count(), cap);
  EXPECT_EQ(s.next_delay(0.0).value().count(), 0);
  EXPECT_EQ(s.next_delay(0.5).value().count(), 2500);

  RetryPolicy three{.max_attempts = 3};
  RetrySchedule counted(three);
  EXPECT_TRUE(counted.next_delay(0.5));
  EXPECT_TRUE(counted.next_delay(0.5));
  EXPECT_FALSE(counted.next_delay(0.5)) << "3 attempts: 2 retries";

  RetryPolicy once{.max_attempts = 0, .retry_window = std::chrono::milliseconds(0)};
  EXPECT_FALSE(RetrySchedule(once).next_delay(0.5));

  // A window: retried until it has passed since the first failure, however many attempts.
  RetryPolicy window{.base_delay = std::chrono::milliseconds(2),
                     .max_delay = std::chrono::milliseconds(10),
                     .retry_window = std::chrono::milliseconds(150)};
  RetrySchedule w(window);
  const auto start = std::chrono::steady_clock::now();
  while (const auto d = w.next_delay(0.9)) std::this_thread::sleep_for(*d);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  EXPECT_GT(w.attempts(), 10);
}

TEST(Xml, ElementsTextAndEntities) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"
      "<Contents><Key>a&amp;b &lt;c&gt; &#233;&#x4e2d;</Key><Size>5</Size><ETag>&quot;abc&quot;</ETag></Contents>"
      "<Contents><Key>d</Key><Size>0</Size></Contents><NextContinuationToken>t/1=</NextContinuationToken>"
      "<Prefix/></ListBucketResult>";
  const auto contents = xml_elements(xml, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(xml_text(contents[0], "Key").value(), "a&b <c> \xc3\xa9\xe4\xb8\xad");
  EXPECT_EQ(xml_text(contents[0], "ETag").value(), "\"abc\"");
  EXPECT_EQ(xml_text(xml, "Key").value(), "a&b <c> \xc3\xa9\xe4\xb8\xad");  // not <KeyCount>
  EXPECT_EQ(xml_text(xml, "KeyCount").value(), "2");
  EXPECT_EQ(xml_text(xml, "Prefix").value(), "");
  EXPECT_FALSE(xml_text(xml, "Missing").has_value());
}

}  // namespace
}  // namespace kiln::storage
