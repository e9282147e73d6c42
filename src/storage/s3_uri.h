// s3://bucket/key URIs: the one way storage names an object or a prefix.
#pragma once

#include <string>
#include <string_view>

namespace kiln::storage {

struct S3Uri {
  std::string bucket;
  std::string key;  // may be empty (the whole bucket) or end with '/' (a prefix)

  // Throws kiln::Error naming the text when it is not s3://BUCKET[/KEY].
  static S3Uri parse(std::string_view text);
  std::string str() const;

  // The same bucket, with `name` appended to this key as a path component.
  S3Uri child(std::string_view name) const;
  // The key as a prefix: empty, or ending with '/'.
  std::string prefix() const;
};

bool is_s3_uri(std::string_view text);

}  // namespace kiln::storage
