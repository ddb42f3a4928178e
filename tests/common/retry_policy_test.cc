// The retry and backoff policies every layer shares, and the time budget they draw from.
#include <gtest/gtest.h>

#include <thread>

#include "arrow_zerobus/errors.h"
#include "common/retry_policy.h"

namespace arrow_zerobus::internal {
namespace {

using std::chrono::milliseconds;

arrow::Status Transient() { return MakeError(ErrorKind::kConnection, true, "refused"); }
arrow::Status Permanent() { return MakeError(ErrorKind::kConnection, false, "bad certificate"); }

TEST(RetryPolicyTest, ErrorCountAllowsThatManyRetriesAndClonesStartAfresh) {
  LimitedErrorCountRetryPolicy prototype(2);
  auto p = prototype.clone();
  EXPECT_TRUE(p->OnFailure(Transient()));
  EXPECT_TRUE(p->OnFailure(Transient()));
  EXPECT_FALSE(p->OnFailure(Transient()));
  EXPECT_TRUE(p->IsExhausted());
  EXPECT_EQ(p->failures(), 3);
  EXPECT_EQ(p->Limit(), "3 attempts");
  auto fresh = prototype.clone();
  EXPECT_FALSE(fresh->IsExhausted());
  EXPECT_TRUE(fresh->OnFailure(Transient()));
}

TEST(RetryPolicyTest, AnErrorThatCannotHealIsNeverRetried) {
  LimitedErrorCountRetryPolicy p(100);
  EXPECT_FALSE(p.OnFailure(Permanent()));
  AttemptsAndTimeRetryPolicy q(100, milliseconds(60'000));
  EXPECT_FALSE(q.OnFailure(Permanent()));
}

TEST(RetryPolicyTest, TimeLimitEndsRetriesAtTheDeadline) {
  LimitedTimeRetryPolicy p(milliseconds(50));
  EXPECT_FALSE(p.deadline().unlimited());
  EXPECT_TRUE(p.OnFailure(Transient()));
  std::this_thread::sleep_for(milliseconds(80));
  EXPECT_TRUE(p.IsExhausted());
  EXPECT_FALSE(p.OnFailure(Transient()));
  EXPECT_EQ(p.Limit(), "a budget of 50 ms");
  // A clone is a new operation: its budget starts now.
  EXPECT_FALSE(p.clone()->IsExhausted());
}

TEST(RetryPolicyTest, AttemptsAndTimeStopsAtWhicheverComesFirst) {
  AttemptsAndTimeRetryPolicy by_count(2, milliseconds(60'000));
  EXPECT_TRUE(by_count.OnFailure(Transient()));   // after attempt 1
  EXPECT_FALSE(by_count.OnFailure(Transient()));  // after attempt 2 of 2
  AttemptsAndTimeRetryPolicy by_time(100, milliseconds(30));
  std::this_thread::sleep_for(milliseconds(60));
  EXPECT_FALSE(by_time.OnFailure(Transient()));
  EXPECT_EQ(by_time.Limit(), "100 attempts within a budget of 30 ms");
}

TEST(DeadlineTest, CapAndAllowsKeepWorkInsideTheBudget) {
  const Deadline none;
  EXPECT_TRUE(none.unlimited());
  EXPECT_FALSE(none.expired());
  EXPECT_EQ(none.Cap(milliseconds(30'000)), milliseconds(30'000));
  EXPECT_TRUE(none.Allows(milliseconds::max()));
  const Deadline soon = Deadline::After(milliseconds(1000));
  EXPECT_LE(soon.Cap(milliseconds(30'000)), milliseconds(1000));
  EXPECT_GT(soon.Cap(milliseconds(30'000)), milliseconds(500));
  EXPECT_EQ(soon.Cap(milliseconds(10)), milliseconds(10));
  EXPECT_TRUE(soon.Allows(milliseconds(10)));
  EXPECT_FALSE(soon.Allows(milliseconds(5000)));
  const Deadline past(RetryClock::now() - milliseconds(1));
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), milliseconds(0));
  EXPECT_EQ(past.Cap(milliseconds(100)), milliseconds(1));  // still a timeout, not "none"
  EXPECT_EQ(soon.Earlier(past).at(), past.at());
  EXPECT_EQ(Deadline::After(milliseconds::max()).unlimited(), true);  // saturates
}

TEST(BackoffPolicyTest, EqualJitterStaysBetweenHalfAndTheCap) {
  ExponentialBackoffPolicy b(milliseconds(2000), milliseconds(30'000), 2.0, 0.5);
  EXPECT_EQ(b.OnCompletion(0.0), milliseconds(1000));   // 2000 * [0.5, 1]
  EXPECT_EQ(b.OnCompletion(1.0), milliseconds(4000));   // 4000 * [0.5, 1]
  EXPECT_EQ(b.OnCompletion(0.5), milliseconds(6000));   // 8000 * 0.75
  EXPECT_EQ(b.OnCompletion(1.0), milliseconds(16000));
  EXPECT_EQ(b.OnCompletion(1.0), milliseconds(30000));  // capped
  EXPECT_EQ(b.clone()->OnCompletion(1.0), milliseconds(2000));
  for (int i = 0; i < 100; ++i) {
    const auto d = b.OnCompletion();
    EXPECT_GE(d, milliseconds(15000));
    EXPECT_LE(d, milliseconds(30000));
  }
}

}  // namespace
}  // namespace arrow_zerobus::internal
