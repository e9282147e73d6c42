// A build killed before its cleanup leaves ".NAME.tmp-PID" behind; the next
// EngineWriter to that output removes those whose process is gone, and only those.
#include "engine/stale_staging.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/engine_writer.h"
#include "support/temp_dir.h"

namespace kiln::engine {
namespace {

namespace fs = std::filesystem;

// The pid of a process that has exited and been reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

fs::path make_staging(const fs::path& output, const char* kind, long pid) {
  const fs::path dir = staging_path(output, kind, pid);
  fs::create_directories(dir);
  std::ofstream(dir / "rank0.bin") << "partial blob";
  return dir;
}

TEST(StaleStaging, NextBuildRemovesDirectoriesOfDeadProcesses) {
  kiln::test::TempDir tmp;
  const fs::path output = tmp / "engine";
  const fs::path dead = make_staging(output, "tmp", dead_pid());
  const fs::path live = make_staging(output, "tmp", static_cast<long>(::getppid()));  // a running build's
  const fs::path other = make_staging(tmp / "other-engine", "tmp", dead_pid());       // another output's
  {
    EngineWriter writer(output, 1, false);
    EXPECT_FALSE(fs::exists(dead)) << dead;
    EXPECT_TRUE(fs::exists(live)) << live;
    EXPECT_TRUE(fs::exists(other)) << other;
  }
  EXPECT_FALSE(fs::exists(output));  // not committed
}

TEST(StaleStaging, KeepsAnOldEngineWhoseReplacementWasInterrupted) {
  kiln::test::TempDir tmp;
  const fs::path output = tmp / "engine";
  // A replacement killed between its two renames: the old engine's only copy.
  const fs::path old_only = make_staging(output, "old", dead_pid());
  EXPECT_TRUE(remove_stale_staging(output).empty());
  EXPECT_TRUE(fs::exists(old_only));
  // Once the output exists again, the aside copy is stale.
  fs::create_directories(output);
  EXPECT_EQ(remove_stale_staging(output), std::vector<fs::path>{old_only});
  EXPECT_FALSE(fs::exists(old_only));
}

TEST(StaleStaging, IgnoresNamesThatOnlyLookSimilar) {
  kiln::test::TempDir tmp;
  const fs::path output = tmp / "engine";
  fs::create_directories(tmp / ".engine.tmp-12x");
  fs::create_directories(tmp / ".engine.tmp-");
  fs::create_directories(tmp / "engine.tmp-1");
  EXPECT_TRUE(remove_stale_staging(output).empty());
  EXPECT_TRUE(fs::exists(tmp / ".engine.tmp-12x"));
}

}  // namespace
}  // namespace kiln::engine
