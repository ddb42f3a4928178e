// One retry policy, one backoff policy and one time budget for every layer that retries: the
// wrapper's attempts, a stream's open and recovery attempts, and the OAuth token fetch. Shaped
// like google-cloud-cpp's: a layer keeps a policy as a prototype and clones it per operation, so
// counters and clocks never leak between operations. The Deadline of an operation is handed down
// the layers (wrapper -> stream -> headers provider -> HTTP call), so they all draw from one
// budget instead of multiplying their own.
#pragma once

#include <chrono>
#include <memory>
#include <random>
#include <string>

#include <arrow/status.h>

namespace arrow_zerobus::internal {

using RetryClock = std::chrono::steady_clock;

// now + d without overflow (a duration of "practically forever" means no end).
RetryClock::time_point SaturatingAfter(RetryClock::time_point from, std::chrono::milliseconds d);

// The time by which an operation must end. Default: none.
class Deadline {
 public:
  Deadline() = default;
  explicit Deadline(RetryClock::time_point at) : at_(at) {}
  static Deadline After(std::chrono::milliseconds budget) {
    return Deadline(SaturatingAfter(RetryClock::now(), budget));
  }

  bool unlimited() const { return at_ == RetryClock::time_point::max(); }
  RetryClock::time_point at() const { return at_; }
  bool expired() const { return !unlimited() && RetryClock::now() >= at_; }
  // What is left (0 once expired; a huge value when unlimited).
  std::chrono::milliseconds remaining() const;
  // `d`, shortened so that it ends by the deadline (at least 1 ms, so a timeout stays a timeout).
  std::chrono::milliseconds Cap(std::chrono::milliseconds d) const;
  // True when something that starts after `delay` would still start before the deadline.
  bool Allows(std::chrono::milliseconds delay) const;
  // The earlier of the two.
  Deadline Earlier(const Deadline& other) const { return at_ <= other.at_ ? *this : other; }

 private:
  RetryClock::time_point at_ = RetryClock::time_point::max();
};

// Decides whether a failed attempt may be followed by another one. A failure that cannot heal
// (IsRetryable false: a refused certificate, a protocol mismatch, a permanent refusal) is never
// retried, whatever the limits.
class RetryPolicy {
 public:
  virtual ~RetryPolicy() = default;
  // A fresh policy for a new operation: no failures counted, time budget starting now.
  virtual std::unique_ptr<RetryPolicy> clone() const = 0;
  // Records the failed attempt; true when another attempt may follow.
  bool OnFailure(const arrow::Status& status);
  virtual bool IsExhausted() const = 0;
  // The operation's deadline (none for a policy that counts only).
  virtual Deadline deadline() const { return Deadline(); }
  // What the policy allows, for messages: "5 attempts", "a budget of 2000 ms".
  virtual std::string Limit() const = 0;
  int failures() const { return failures_; }

 protected:
  int failures_ = 0;
};

// At most `maximum_failures` failures are retried (so maximum_failures + 1 attempts in all).
class LimitedErrorCountRetryPolicy : public RetryPolicy {
 public:
  explicit LimitedErrorCountRetryPolicy(int maximum_failures)
      : maximum_failures_(maximum_failures) {}
  std::unique_ptr<RetryPolicy> clone() const override {
    return std::make_unique<LimitedErrorCountRetryPolicy>(maximum_failures_);
  }
  bool IsExhausted() const override { return failures_ > maximum_failures_; }
  std::string Limit() const override;

 private:
  int maximum_failures_;
};

// Retries until `maximum_duration` has passed since the policy was made (or cloned).
class LimitedTimeRetryPolicy : public RetryPolicy {
 public:
  explicit LimitedTimeRetryPolicy(std::chrono::milliseconds maximum_duration)
      : maximum_duration_(maximum_duration), deadline_(Deadline::After(maximum_duration)) {}
  std::unique_ptr<RetryPolicy> clone() const override {
    return std::make_unique<LimitedTimeRetryPolicy>(maximum_duration_);
  }
  bool IsExhausted() const override { return deadline_.expired(); }
  Deadline deadline() const override { return deadline_; }
  std::string Limit() const override;

 private:
  std::chrono::milliseconds maximum_duration_;
  Deadline deadline_;
};

// Both limits (the wrapper's retry_max_attempts and its budget): exhausted as soon as either is.
class AttemptsAndTimeRetryPolicy : public RetryPolicy {
 public:
  AttemptsAndTimeRetryPolicy(int maximum_attempts, std::chrono::milliseconds maximum_duration)
      : maximum_attempts_(maximum_attempts),
        maximum_duration_(maximum_duration),
        deadline_(Deadline::After(maximum_duration)) {}
  std::unique_ptr<RetryPolicy> clone() const override {
    return std::make_unique<AttemptsAndTimeRetryPolicy>(maximum_attempts_, maximum_duration_);
  }
  bool IsExhausted() const override {
    return failures_ >= maximum_attempts_ || deadline_.expired();
  }
  Deadline deadline() const override { return deadline_; }
  std::string Limit() const override;

 private:
  int maximum_attempts_;
  std::chrono::milliseconds maximum_duration_;
  Deadline deadline_;
};

// Delays between attempts: initial * scaling^(n-1) for the n-th, capped at maximum, each drawn
// uniformly from [jitter_floor * delay, delay] (jitter_floor 0: "full jitter"; 0.5: "equal
// jitter"), so that many clients failing together do not retry together.
class ExponentialBackoffPolicy {
 public:
  ExponentialBackoffPolicy(std::chrono::milliseconds initial, std::chrono::milliseconds maximum,
                           double scaling = 2.0, double jitter_floor = 0.0)
      : initial_(initial), maximum_(maximum), scaling_(scaling), jitter_floor_(jitter_floor) {}
  // A fresh policy (the next delay is the initial one again).
  std::unique_ptr<ExponentialBackoffPolicy> clone() const {
    return std::make_unique<ExponentialBackoffPolicy>(initial_, maximum_, scaling_, jitter_floor_);
  }
  // The delay after the attempt that just failed.
  std::chrono::milliseconds OnCompletion();
  // The same with the random draw given (`unit` in [0, 1]): for tests.
  std::chrono::milliseconds OnCompletion(double unit);

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds maximum_;
  double scaling_;
  double jitter_floor_;
  int completed_ = 0;
};

}  // namespace arrow_zerobus::internal
