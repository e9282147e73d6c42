#include "core/process.h"

#include <signal.h>

#include <cerrno>

namespace kiln {

bool process_gone(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

}  // namespace kiln
