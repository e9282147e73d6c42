// How failed S3 requests are retried: which failures, how often, how long
// apart. Resolved from AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (or retry_mode /
// max_attempts in the profile of ~/.aws/config), as the AWS tools do.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace kiln::storage {

enum class RetryMode {
  // A fixed number of attempts (5 unless max_attempts says otherwise), as the
  // aws CLI's legacy mode; no time window.
  legacy,
  // kiln's default: exponential backoff with full jitter, every request
  // retried until `retry_window` has passed since its first failure (or
  // max_attempts attempts when that is set), so a long transfer rides out an
  // outage of a minute.
  standard,
  // As standard, and a throttling answer (429, SlowDown, Throttling...) makes
  // every request of the client wait out the backoff, not only the throttled
  // one, so parallel parts stop hammering a server that asked them to slow down.
  adaptive,
};

struct RetryPolicy {
  RetryMode mode = RetryMode::standard;
  // Attempts per request, the first included; 0: no count limit (the window decides).
  int max_attempts = 0;
  // The n-th retry waits a uniformly random time in [0, min(max_delay, base_delay * 2^(n-1))].
  std::chrono::milliseconds base_delay{250};
  std::chrono::milliseconds max_delay{5000};
  // While this long has not passed since a request first failed, it is retried
  // (0: no window). With max_attempts 0 and no window a request is tried once.
  std::chrono::milliseconds retry_window{60000};
};

// The policy for a mode, with an optional attempt count (AWS_MAX_ATTEMPTS):
// given, it replaces the window.
RetryPolicy retry_policy_for(RetryMode mode, std::optional<int> max_attempts);

// "legacy", "standard" or "adaptive" (any case); throws naming `where` otherwise.
RetryMode parse_retry_mode(const std::string& text, const std::string& where);
// A whole number >= 1; throws naming `where` otherwise.
int parse_max_attempts(const std::string& text, const std::string& where);
std::string retry_mode_name(RetryMode mode);

// One request's retry bookkeeping: call `next_delay` after each failed attempt.
class RetrySchedule {
 public:
  explicit RetrySchedule(const RetryPolicy& policy) : policy_(&policy) {}
  // After a failed attempt: the wait before the next one, or nullopt when the
  // policy's attempts or window are spent. `random_unit` in [0, 1) picks the jitter.
  std::optional<std::chrono::milliseconds> next_delay(double random_unit);
  int attempts() const { return attempts_; }

 private:
  const RetryPolicy* policy_;
  int attempts_ = 0;
  std::optional<std::chrono::steady_clock::time_point> first_failure_;
};

}  // namespace kiln::storage
