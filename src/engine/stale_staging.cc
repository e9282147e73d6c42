#include "engine/stale_staging.h"

#include <charconv>
#include <string>

#include "core/error.h"
#include "core/process.h"

namespace kiln::engine {
namespace fs = std::filesystem;

namespace {

// The pid in ".NAME.KIND-PID", or -1 when `file` is not such a name.
long staging_pid(const std::string& file, const std::string& prefix) {
  if (!file.starts_with(prefix) || file.size() == prefix.size()) return -1;
  long pid = -1;
  const char* end = file.data() + file.size();
  const auto [ptr, ec] = std::from_chars(file.data() + prefix.size(), end, pid);
  return ec == std::errc() && ptr == end ? pid : -1;
}

}  // namespace

fs::path staging_path(const fs::path& output, const char* kind, long pid) {
  const fs::path parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
  return parent / concat(".", output.filename().string(), ".", kind, "-", pid);
}

std::vector<fs::path> remove_dead_process_dirs(const fs::path& parent, const std::string& prefix) {
  std::vector<fs::path> removed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const long pid = staging_pid(entry.path().filename().string(), prefix);
    if (pid < 0 || !process_gone(pid)) continue;
    std::error_code remove_error;
    fs::remove_all(entry.path(), remove_error);
    if (!remove_error) removed.push_back(entry.path());
  }
  return removed;
}

std::vector<fs::path> remove_stale_staging(const fs::path& output) {
  const fs::path parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
  const std::string name = output.filename().string();
  std::vector<fs::path> removed = remove_dead_process_dirs(parent, concat(".", name, ".tmp-"));
  std::error_code ec;
  if (fs::exists(output, ec)) {
    for (auto& p : remove_dead_process_dirs(parent, concat(".", name, ".old-"))) removed.push_back(std::move(p));
  }
  return removed;
}

}  // namespace kiln::engine
