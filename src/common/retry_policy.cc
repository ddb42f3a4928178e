#include "common/retry_policy.h"

#include <algorithm>
#include <cmath>

#include "arrow_zerobus/errors.h"

namespace arrow_zerobus::internal {

using std::chrono::milliseconds;

RetryClock::time_point SaturatingAfter(RetryClock::time_point from, milliseconds d) {
  const auto room = std::chrono::duration_cast<milliseconds>(RetryClock::time_point::max() - from);
  return d >= room ? RetryClock::time_point::max() : from + d;
}

milliseconds Deadline::remaining() const {
  if (unlimited()) return milliseconds::max();
  const auto now = RetryClock::now();
  if (now >= at_) return milliseconds(0);
  return std::chrono::ceil<milliseconds>(at_ - now);
}

milliseconds Deadline::Cap(milliseconds d) const {
  return std::max(milliseconds(1), std::min(d, remaining()));
}

bool Deadline::Allows(milliseconds delay) const {
  return unlimited() || SaturatingAfter(RetryClock::now(), delay) < at_;
}

bool RetryPolicy::OnFailure(const arrow::Status& status) {
  ++failures_;
  if (!IsRetryable(status)) return false;
  return !IsExhausted();
}

std::string LimitedErrorCountRetryPolicy::Limit() const {
  return std::to_string(maximum_failures_ + 1) + " attempts";
}

std::string LimitedTimeRetryPolicy::Limit() const {
  return "a budget of " + std::to_string(maximum_duration_.count()) + " ms";
}

std::string AttemptsAndTimeRetryPolicy::Limit() const {
  return std::to_string(maximum_attempts_) + " attempts within a budget of " +
         std::to_string(maximum_duration_.count()) + " ms";
}

milliseconds ExponentialBackoffPolicy::OnCompletion() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return OnCompletion(std::uniform_real_distribution<double>(0.0, 1.0)(rng));
}

milliseconds ExponentialBackoffPolicy::OnCompletion(double unit) {
  const int n = std::min(completed_, 200);  // scaling^200 is past any cap already
  ++completed_;
  const double cap = std::min(static_cast<double>(maximum_.count()),
                              static_cast<double>(initial_.count()) * std::pow(scaling_, n));
  const double floor = std::clamp(jitter_floor_, 0.0, 1.0);
  const double factor = floor + (1.0 - floor) * std::clamp(unit, 0.0, 1.0);
  return milliseconds(static_cast<int64_t>(cap * factor));
}

}  // namespace arrow_zerobus::internal
