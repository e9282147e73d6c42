// SigV4 against the AWS documentation's published example, and its encoding rules.
#include "storage/sigv4.h"

#include <gtest/gtest.h>

namespace kiln::storage {
namespace {

// "Example: GET Object" in the S3 API reference, sig-v4-header-based-auth.
TEST(SigV4, MatchesTheAwsDocumentationGetObjectExample) {
  const Credentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "doc"};
  SigningRequest r;
  r.method = "GET";
  r.canonical_uri = "/test.txt";
  r.payload_hash = sha256_hex("");
  r.amz_date = "20130524T000000Z";
  r.region = "us-east-1";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", r.payload_hash},
               {"x-amz-date", r.amz_date}};
  EXPECT_EQ(r.payload_hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(canonical_request(r),
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(string_to_sign(r),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(sigv4_signature(r, creds), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sigv4_authorization(r, creds),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, UriEncodingKeepsUnreservedAndOptionallySlashes) {
  EXPECT_EQ(uri_encode("a/b c+d&e~f_g-h.i", true), "a/b%20c%2Bd%26e~f_g-h.i");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("\xc3\xa9", true), "%C3%A9");
}

TEST(SigV4, CanonicalQueryIsSortedAndEncoded) {
  EXPECT_EQ(canonical_query_string({{"prefix", "a b/"}, {"list-type", "2"}, {"continuation-token", "x=y"}}),
            "continuation-token=x%3Dy&list-type=2&prefix=a%20b%2F");
  EXPECT_EQ(canonical_query_string({{"uploads", ""}}), "uploads=");
}

TEST(SigV4, HeaderValuesAreTrimmedAndNamesLowerCased) {
  SigningRequest r;
  r.method = "PUT";
  r.canonical_uri = "/";
  r.payload_hash = "UNSIGNED-PAYLOAD";
  r.headers = {{"X-Amz-Date", "  20130524T000000Z "}, {"Host", "h"}};
  EXPECT_EQ(canonical_request(r), "PUT\n/\n\nhost:h\nx-amz-date:20130524T000000Z\n\nhost;x-amz-date\nUNSIGNED-PAYLOAD");
}

}  // namespace
}  // namespace kiln::storage
