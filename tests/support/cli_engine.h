// Engines for tests of layers below the compiler, which cannot link it: built
// from a checkpoint by the kiln binary itself.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace kiln::test {

inline ::testing::AssertionResult build_with_cli(const std::filesystem::path& model,
                                                 const std::filesystem::path& output, const std::string& extra = "") {
  const std::string cmd = std::string(KILN_BINARY) + " build -q --model '" + model.string() + "' --output '" +
                          output.string() + "' --target cpu " + extra + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return ::testing::AssertionFailure() << "cannot run " << cmd;
  std::string log;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) log.append(buf, n);
  if (::pclose(pipe) != 0) return ::testing::AssertionFailure() << cmd << "\n" << log;
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
