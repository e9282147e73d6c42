// Helpers for tests that run the kiln binary and make checkpoints on the fly.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::test {

namespace fs = std::filesystem;

struct RunResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, stdout and stderr together.
inline RunResult run_shell(const std::string& cmd) {
  RunResult r;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

inline RunResult run_kiln(const std::string& args) { return run_shell(std::string(KILN_BINARY) + " " + args); }

// As run_kiln, killed after `seconds` (then status is 137, never a pass).
inline RunResult run_kiln_with_timeout(const std::string& args, int seconds) {
  return run_shell("timeout --signal=KILL " + std::to_string(seconds) + " " + std::string(KILN_BINARY) + " " + args);
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string fixture(const std::string& name) { return std::string(KILN_FIXTURES) + "/models/" + name; }
inline std::string demo_model() { return std::string(KILN_SOURCE_DIR) + "/demo/model"; }

// Suites that run the llama fixture's engine, built once per suite with the kiln binary.
class LlamaEngineSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto r = run_kiln("build -q --model " + fixture("llama") + " --output " + engine().string());
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path engine() { return dir_->path() / "llama"; }
  static inline TempDir* dir_ = nullptr;
};

inline void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

inline nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(std::ifstream(path)); }

// A safetensors file from (name -> dtype, shape, raw bytes); tensors laid out in order.
struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};

inline void write_safetensors(const fs::path& path, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  const std::string h = header.dump();
  const uint64_t len = h.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& [name, t] : tensors) out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
}

inline RawTensor f32_tensor(std::vector<int64_t> shape, float value) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  RawTensor t{"F32", shape, std::vector<char>(static_cast<std::size_t>(n) * 4)};
  for (int64_t i = 0; i < n; ++i) std::memcpy(t.bytes.data() + i * 4, &value, 4);
  return t;
}

}  // namespace kiln::test
