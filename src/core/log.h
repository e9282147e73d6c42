// Minimal leveled logging to stderr. Progress and warnings go to stderr so that
// stdout stays machine-readable (`generate --json`).
#pragma once

#include <string>

#include "core/error.h"

namespace kiln {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, quiet = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& message);

template <typename... Parts>
void log_info(Parts&&... parts) {
  if (log_level() <= LogLevel::info) log_line(LogLevel::info, concat(std::forward<Parts>(parts)...));
}
template <typename... Parts>
void log_warn(Parts&&... parts) {
  if (log_level() <= LogLevel::warn) log_line(LogLevel::warn, concat(std::forward<Parts>(parts)...));
}
template <typename... Parts>
void log_debug(Parts&&... parts) {
  if (log_level() <= LogLevel::debug) log_line(LogLevel::debug, concat(std::forward<Parts>(parts)...));
}

}  // namespace kiln
