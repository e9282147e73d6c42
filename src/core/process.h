// Whether another process still exists: how leftovers named after the process
// that made them (a build's staging directory, a download's partial file) are
// told from those of a process still at work.
#pragma once

namespace kiln {

// True only when no process `pid` exists. A process we may not signal
// (EPERM) exists; pid <= 0 names none and counts as not gone.
bool process_gone(long pid);

}  // namespace kiln
