// What the libFuzzer harnesses share: running code under test so that kiln::Error (the project's answer to bad
// input) is an expected outcome, and handing bytes to APIs that only read files.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"

namespace kiln::fuzz {

// Runs `action`; kiln::Error is how the code refuses bad input, so it is swallowed. Anything else (another
// exception, a crash, a sanitizer report, a hang) is left for libFuzzer to report as a finding.
template <typename Action>
void expect_only_kiln_errors(Action&& action) {
  try {
    action();
  } catch (const kiln::Error&) {
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A file in /dev/shm (memory, not disk) that each run rewrites, for APIs that take a path. One per process and
// name, so parallel fuzzing jobs do not share it; removed at exit.
class ShmFile {
 public:
  explicit ShmFile(std::string_view name)
      : path_(std::filesystem::path("/dev/shm") /
              ("kiln-fuzz-" + std::to_string(::getpid()) + "-" + std::string(name))) {}
  ~ShmFile() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ShmFile(const ShmFile&) = delete;
  ShmFile& operator=(const ShmFile&) = delete;

  // Replaces the file's contents with `bytes`; returns its path.
  const std::filesystem::path& write(std::string_view bytes) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kiln::fuzz
