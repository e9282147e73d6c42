// AWS credentials found the way the AWS CLI and SDKs find them: the
// environment first, then the shared credentials and config files.
#pragma once

#include <string>

#include "storage/environment.h"

namespace kiln::storage {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
  // Where they came from, for error messages: "environment (AWS_ACCESS_KEY_ID)"
  // or "profile 'dev' in /home/me/.aws/credentials".
  std::string source;
};

// Throws kiln::Error listing the places it looked when none has credentials.
Credentials resolve_credentials(const Environment& env);

// The profile name in use (AWS_PROFILE, else "default") and the two shared files.
std::string aws_profile_name(const Environment& env);
std::string aws_credentials_file(const Environment& env);
std::string aws_config_file(const Environment& env);

}  // namespace kiln::storage
