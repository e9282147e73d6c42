// The process environment as a value, so that credential and endpoint
// resolution can be tested without touching the real environment.
#pragma once

#include <map>
#include <string>

namespace kiln::storage {

using Environment = std::map<std::string, std::string>;

Environment process_environment();

// The value of `name`, or "" when unset.
std::string env_value(const Environment& env, const std::string& name);

}  // namespace kiln::storage
