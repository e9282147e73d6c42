// Staging directories a killed build left behind. EngineWriter stages an
// engine in the hidden sibling ".NAME.tmp-PID" (and moves a replaced engine
// aside to ".NAME.old-PID"); a build killed before its destructor ran leaves
// them, possibly gigabytes, where nothing would ever remove them. The next
// build to the same output removes those whose process is gone.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::engine {

// The hidden sibling of `output` for `kind` ("tmp", "old") and process `pid`.
std::filesystem::path staging_path(const std::filesystem::path& output, const char* kind, long pid);

// Removes the entries of `parent` named `prefix` + PID whose process no longer
// runs; returns what it removed.
std::vector<std::filesystem::path> remove_dead_process_dirs(const std::filesystem::path& parent,
                                                            const std::string& prefix);

// Removes the "tmp" siblings of `output` whose process no longer runs (and
// "old" ones, once `output` itself exists: an "old" one without the output is
// the only copy of an engine whose replacement was interrupted, and is kept).
// Returns what it removed. Errors are ignored: this is housekeeping.
std::vector<std::filesystem::path> remove_stale_staging(const std::filesystem::path& output);

}  // namespace kiln::engine
