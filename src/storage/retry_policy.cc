#include "storage/retry_policy.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace kiln::storage {

RetryPolicy retry_policy_for(RetryMode mode, std::optional<int> max_attempts) {
  RetryPolicy p;
  p.mode = mode;
  if (mode == RetryMode::legacy) {
    p.max_attempts = 5;
    p.retry_window = std::chrono::milliseconds(0);
  }
  if (max_attempts) {
    p.max_attempts = *max_attempts;
    p.retry_window = std::chrono::milliseconds(0);
  }
  return p;
}

RetryMode parse_retry_mode(const std::string& text, const std::string& where) {
  std::string t;
  for (const char ch : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (t == "legacy") return RetryMode::legacy;
  if (t == "standard") return RetryMode::standard;
  if (t == "adaptive") return RetryMode::adaptive;
  throw_error(where, " is '", text, "': expected legacy, standard or adaptive");
}

int parse_max_attempts(const std::string& text, const std::string& where) {
  std::size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < 1 || value > 1000) {
    throw_error(where, " is '", text, "': expected a number of attempts from 1 to 1000 (1: no retries)");
  }
  return static_cast<int>(value);
}

std::string retry_mode_name(RetryMode mode) {
  switch (mode) {
    case RetryMode::legacy: return "legacy";
    case RetryMode::standard: return "standard";
    case RetryMode::adaptive: return "adaptive";
  }
  return "standard";
}

std::optional<std::chrono::milliseconds> RetrySchedule::next_delay(double random_unit) {
  const auto now = std::chrono::steady_clock::now();
  if (!first_failure_) first_failure_ = now;
  ++attempts_;
  const bool counted = policy_->max_attempts > 0;
  const bool windowed = policy_->retry_window.count() > 0;
  if (counted && attempts_ >= policy_->max_attempts) return std::nullopt;
  if (windowed && now - *first_failure_ >= policy_->retry_window) return std::nullopt;
  if (!counted && !windowed) return std::nullopt;
  // Full jitter: uniform in [0, cap], the cap doubling per retry up to max_delay.
  const int shift = std::min(attempts_ - 1, 30);
  const int64_t cap = std::min<int64_t>(policy_->max_delay.count(), policy_->base_delay.count() << shift);
  const double unit = std::clamp(random_unit, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(unit * static_cast<double>(cap)));
}

}  // namespace kiln::storage
