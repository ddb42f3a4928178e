// ZerobusWrapper against the in-process emulator over loopback: per-row accounting under every
// fault the emulator injects, retries, cool-downs, concurrency, stream spreading, descriptor
// sources, debug files and telemetry.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <arrow/api.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/arrow_zerobus.h"
#include "server/auth.h"
#include "wrapper_test_util.h"

namespace arrow_zerobus::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kTable = "main.default.events";

class WrapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearTokenCache();  // tokens of an earlier test's emulator mean nothing to this one
    emu_ = StartEmulator(dir_.path());
    ASSERT_NE(emu_, nullptr);
  }

  ZerobusWrapper MakeWrapper(const WrapperConfiguration& config) {
    auto w = ZerobusWrapper::Make(config);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return std::move(w).ValueOrDie();
  }

  TransmissionResult Send(ZerobusWrapper& w, const std::shared_ptr<arrow::RecordBatch>& batch) {
    auto r = w.SendBatch(*batch);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return TransmissionResult::WholeBatchFailure(batch->num_rows(), r.status());
    ExpectAccounted(*r, batch->num_rows());
    return *r;
  }

  void AddFault(emulator::FaultRule rule) {
    rule.table = kTable;
    emu_->faults().Add(std::move(rule));
  }

  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

// Ends the RPC once `after_requests` requests have been appended. The emulator appends a request
// before it applies the fault, so under load a fast commit could ack that request before the RPC
// ends; holding acks back `ack_delay_ms` makes the break always come first.
emulator::FaultRule EndStream(int64_t after_requests, int code, std::string message,
                              int64_t times, int64_t ack_delay_ms = 150) {
  emulator::FaultRule rule;
  rule.end_stream = emulator::EndStreamFault{after_requests, code, std::move(message)};
  rule.times = times;
  rule.ack_delay_ms = ack_delay_ms;
  return rule;
}

constexpr int kInvalidArgument = 3;
constexpr int kResourceExhausted = 8;
constexpr int kUnavailable = 14;

std::multiset<int64_t> Ids(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

TEST_F(WrapperTest, HappyPathRowsLandInTheDeltaTable) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  int64_t bytes = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = Send(w, MakeRows(i * 400, 400));
    EXPECT_TRUE(r.success);
    EXPECT_EQ(r.successful_count, 400);
    EXPECT_EQ(r.failed_count, 0);
    EXPECT_FALSE(r.error.has_value());
    EXPECT_EQ(r.attempts, 1);
    ASSERT_TRUE(r.latency_ms.has_value());
    EXPECT_GT(*r.latency_ms, 0.0);
    EXPECT_GT(r.batch_size_bytes, 400 * 5);  // id + name, framed
    bytes += r.batch_size_bytes;
  }
  ASSERT_TRUE(w.Flush().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  std::sort(ids->begin(), ids->end());
  ASSERT_EQ(ids->size(), 1200u);
  for (int64_t i = 0; i < 1200; ++i) ASSERT_EQ((*ids)[i], i);

  const WrapperStats s = w.stats();
  EXPECT_EQ(s.batches, 3);
  EXPECT_EQ(s.rows_successful, 1200);
  EXPECT_EQ(s.rows_failed, 0);
  EXPECT_EQ(s.bytes_sent, bytes);
  EXPECT_EQ(s.replayed_records, 0);
  EXPECT_EQ(s.streams_opened, 1);
  ASSERT_TRUE(w.Shutdown().ok());
}

TEST_F(WrapperTest, EmptyBatchSucceedsWithoutOpeningAStream) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  auto r = Send(w, MakeRows(0, 0));
  EXPECT_TRUE(r.success);
  EXPECT_EQ(r.total_rows, 0);
  EXPECT_EQ(w.stats().streams_opened, 0);
  EXPECT_TRUE(EmulatorStreams(*emu_, kTable).empty());
}

TEST_F(WrapperTest, ConversionFailuresAreFailedRowsAndTheOthersLand) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  auto r = Send(w, MakeRowsWithNullIds(0, 50, {3, 17}));
  EXPECT_TRUE(r.success);
  EXPECT_TRUE(r.IsPartialSuccess());
  EXPECT_EQ(r.FailedRowIndices(), (std::vector<int64_t>{3, 17}));
  for (const auto& f : r.failed_rows) {
    EXPECT_THAT(f.message, StartsWith("Conversion error: "));
    EXPECT_THAT(f.message, HasSubstr("id"));
  }
  EXPECT_EQ(r.GroupErrorsByType()["ConversionError"], (std::vector<int64_t>{3, 17}));
  ASSERT_TRUE(w.Flush().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  std::multiset<int64_t> expected;
  for (int64_t i = 0; i < 50; ++i) {
    if (i != 3 && i != 17) expected.insert(i);
  }
  EXPECT_EQ(Ids(*ids), expected);
}

TEST_F(WrapperTest, RetryableStreamEndIsRecoveredAndTheReplayIsCounted) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  ASSERT_TRUE(Send(w, MakeRows(0, 100)).success);
  // The second request is appended, then the RPC ends before its ack: the stream reopens and
  // replays it, so its rows land twice.
  AddFault(EndStream(2, kUnavailable, "6002 Stream timeout reached", 1));
  auto r = Send(w, MakeRows(100, 100));
  EXPECT_EQ(r.successful_count, 100);
  EXPECT_EQ(r.attempts, 1);  // recovered inside the stream, not by a wrapper retry
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.rows_successful, 200);
  EXPECT_EQ(s.replayed_records, 100);
  EXPECT_EQ(TableRows(*emu_, kTable), s.rows_successful + s.replayed_records);
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  const auto counted = Ids(*ids);
  EXPECT_EQ(counted.count(5), 1u);
  EXPECT_EQ(counted.count(150), 2u);
}

TEST_F(WrapperTest, RateLimitRefusalEndsTheStreamAndIsRetriedByTheWrapper) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;  // the stream gives up at once: the wrapper's retry takes over
  auto w = MakeWrapper(config);
  ASSERT_EQ(Send(w, MakeRows(0, 60)).successful_count, 60);
  AddFault(EndStream(2, kResourceExhausted, "rate limit exceeded for table", 1));
  auto r = Send(w, MakeRows(60, 60));
  EXPECT_EQ(r.successful_count, 60);
  EXPECT_EQ(r.attempts, 2);
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.streams_failed, 1);
  EXPECT_EQ(s.rows_retried, 60);
  EXPECT_EQ(s.replayed_records, 60);
  EXPECT_EQ(TableRows(*emu_, kTable), s.rows_successful + s.replayed_records);
}

TEST_F(WrapperTest, NonRetryableStreamEndFailsTheRowsWithoutRetry) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  AddFault(EndStream(1, kInvalidArgument, "schema mismatch injected", 1));
  auto r = Send(w, MakeRows(0, 100));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.failed_count, 100);
  EXPECT_EQ(r.attempts, 1);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Transmission error: "));
  EXPECT_THAT(*r.error, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ(r.GroupErrorsByType()["TransmissionError"].size(), 100u);
  // The failed stream is replaced: the next batch goes through on a fresh one.
  auto next = Send(w, MakeRows(100, 100));
  EXPECT_EQ(next.successful_count, 100);
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.streams_failed, 1);
  EXPECT_EQ(s.streams_opened, 2);
  EXPECT_EQ(s.retries, 0);
}

TEST_F(WrapperTest, RetrySendsOnlyTheUnackedChunkAgain) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;       // the first break is final for the stream
  config.max_inflight_requests = 1;  // chunk 2 goes out only after chunk 1 is acked
  // Only the injected break may end the stream: storing a 10 MB request can take longer than
  // the fast 3 s ack timeout on a slow machine (under ThreadSanitizer it did).
  config.ack_timeout_ms = 60000;
  auto w = MakeWrapper(config);
  // ~11 MB of rows (names of 2000 bytes, every fifth one null): two chunks, since one request
  // holds at most 10 MiB - 64 KiB.
  const int64_t n = 7000;
  auto batch = MakeRows(0, n, 2000);
  AddFault(EndStream(2, kUnavailable, "injected break after chunk 2", 1));
  auto r = Send(w, batch);
  EXPECT_EQ(r.successful_count, n);
  EXPECT_EQ(r.attempts, 2);
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.retries, 1);
  EXPECT_GT(s.rows_retried, 0);
  EXPECT_LT(s.rows_retried, n);  // the acked first chunk was not sent again
  EXPECT_EQ(s.replayed_records, s.rows_retried);  // the retried chunk had been on the wire
  EXPECT_EQ(s.streams_failed, 1);
  EXPECT_EQ(TableRows(*emu_, kTable), s.rows_successful + s.replayed_records);
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  const auto counted = Ids(*ids);
  const int64_t first_retried = n - s.rows_retried;
  for (int64_t id : {int64_t{0}, first_retried - 1}) EXPECT_EQ(counted.count(id), 1u) << id;
  for (int64_t id : {first_retried, n - 1}) EXPECT_EQ(counted.count(id), 2u) << id;
}

TEST_F(WrapperTest, NonRetryableBreakMidBatchKeepsTheAckedChunkSuccessful) {
  auto config = FastConfig(*emu_, kTable);
  config.max_inflight_requests = 1;  // chunk 2 goes out only after chunk 1 is acked
  config.ack_timeout_ms = 60000;     // only the injected break ends the stream, as above
  auto w = MakeWrapper(config);
  const int64_t n = 7000;  // two chunks, as above
  AddFault(EndStream(2, kInvalidArgument, "refused in the middle", 1));
  auto r = Send(w, MakeRows(0, n, 2000));
  EXPECT_TRUE(r.IsPartialSuccess());
  EXPECT_EQ(r.attempts, 1);
  ASSERT_GT(r.successful_count, 0);
  ASSERT_GT(r.failed_count, 0);
  // The acked chunk is a prefix of the batch, the failed one the rest.
  EXPECT_EQ(r.successful_rows.back(), r.successful_count - 1);
  EXPECT_EQ(r.failed_rows.front().row_index, r.successful_count);
  for (const auto& f : r.failed_rows) {
    ASSERT_THAT(f.message, StartsWith("Transmission error: "));
    ASSERT_THAT(f.message, HasSubstr("refused in the middle"));
  }
  ASSERT_TRUE(w.Flush().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  const auto counted = Ids(*ids);
  for (int64_t row : r.successful_rows) ASSERT_EQ(counted.count(row), 1u) << row;
}

TEST_F(WrapperTest, RetryExhaustedNamesTheLastCause) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;
  config.retry_max_attempts = 3;
  auto w = MakeWrapper(config);
  AddFault(EndStream(0, kUnavailable, "backend overloaded", 0, 0));  // every stream
  auto r = Send(w, MakeRows(0, 50));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.failed_count, 50);
  EXPECT_EQ(r.attempts, 3);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Retry exhausted: gave up after 3 attempts; last cause: "));
  EXPECT_THAT(*r.error, HasSubstr("backend overloaded"));
  EXPECT_EQ(r.GroupErrorsByType()["RetryExhausted"].size(), 50u);
  EXPECT_EQ(w.stats().retries, 2);
}

// The last attempt often fails only because the budget cut it short; the first attempt's
// different cause (here a distinct message) is named beside the last one.
TEST_F(WrapperTest, RetryExhaustedAlsoNamesTheFirstAttemptsCauseWhenItDiffers) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;
  config.retry_max_attempts = 2;
  auto w = MakeWrapper(config);
  AddFault(EndStream(0, kUnavailable, "first stream refused", 1, 0));
  AddFault(EndStream(0, kUnavailable, "backend overloaded", 0, 0));
  auto r = Send(w, MakeRows(0, 20));
  EXPECT_EQ(r.failed_count, 20);
  ASSERT_TRUE(r.error.has_value());
  const std::string& e = *r.error;
  EXPECT_THAT(e, StartsWith("Retry exhausted: gave up after 2 attempts; last cause: "));
  const auto last = e.find("backend overloaded");
  const auto first = e.find("; first attempt's cause: ");
  ASSERT_NE(last, std::string::npos) << e;
  ASSERT_NE(first, std::string::npos) << e;
  EXPECT_LT(last, first);
  EXPECT_NE(e.find("first stream refused", first), std::string::npos) << e;
}

// Every stream ends after one request (UNAVAILABLE): each send of a row lands, and without a
// bound one row went on the wire retry_max_attempts x (recovery_retries + 1) = 25 times.
TEST_F(WrapperTest, OneRowGoesOnTheWireAtMostMaxSendsPerRowTimes) {
  auto config = FastConfig(*emu_, kTable);
  config.retry_max_attempts = 5;
  config.recovery_retries = 4;
  config.max_sends_per_row = 3;
  auto w = MakeWrapper(config);
  AddFault(EndStream(1, kUnavailable, "injected: unavailable", 0));  // every stream
  auto r = Send(w, MakeRows(0, 100));
  EXPECT_EQ(r.successful_count, 0);
  EXPECT_EQ(r.failed_count, 100);
  EXPECT_EQ(r.in_doubt_rows.size(), 100u);
  EXPECT_EQ(r.wire_copies, 300);
  EXPECT_EQ(r.rows_sent_more_than_once, 100);
  EXPECT_EQ(r.replayed_rows, 200);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, HasSubstr("sent 3 time(s), the most max_sends_per_row allows"));
  EXPECT_THAT(*r.error, HasSubstr("injected: unavailable"));
  for (const auto& f : r.failed_rows) EXPECT_THAT(f.message, HasSubstr("in doubt"));
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.wire_copies, 300);
  EXPECT_EQ(s.rows_sent_more_than_once, 100);
  emu_->faults().Clear();
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  std::map<int64_t, int> copies;
  for (int64_t id : *ids) ++copies[id];
  for (const auto& [id, n] : copies) EXPECT_LE(n, 3) << "id " << id;
  EXPECT_LE(static_cast<int64_t>(ids->size()), r.wire_copies);
}

TEST_F(WrapperTest, WithheldAcksTimeOutAndAreRetriedUntilExhausted) {
  auto config = FastConfig(*emu_, kTable);
  config.ack_timeout_ms = 150;
  config.recovery_retries = 0;
  config.retry_max_attempts = 2;
  auto w = MakeWrapper(config);
  emulator::FaultRule rule;
  rule.withhold_acks = true;
  AddFault(rule);
  auto r = Send(w, MakeRows(0, 20));
  EXPECT_EQ(r.failed_count, 20);
  EXPECT_EQ(r.attempts, 2);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Retry exhausted: "));
  EXPECT_THAT(*r.error, HasSubstr("server_lack_of_ack_timeout"));
  // The rows were on the wire in attempt 1, so attempt 2 was a replay.
  EXPECT_EQ(w.stats().replayed_records, 20);
  emu_->faults().Clear();
  auto next = Send(w, MakeRows(20, 20));
  EXPECT_EQ(next.successful_count, 20);
  // Durable but never acknowledged: both sends of the first batch landed, plus the second (and
  // any replay of it, should its ack be slower than the 150 ms bound on a loaded machine).
  EXPECT_EQ(TableRows(*emu_, kTable), 20 + w.stats().rows_successful + w.stats().replayed_records);
  EXPECT_GE(TableRows(*emu_, kTable), 60);
}

TEST_F(WrapperTest, DelayedAcksWithinTheTimeoutSucceed) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  emulator::FaultRule rule;
  rule.ack_delay_ms = 200;
  AddFault(rule);
  auto r = Send(w, MakeRows(0, 30));
  EXPECT_EQ(r.successful_count, 30);
  ASSERT_TRUE(r.latency_ms.has_value());
  EXPECT_GE(*r.latency_ms, 190.0);
}

TEST_F(WrapperTest, DelayedAcksBeyondTheTimeoutFailEveryRow) {
  auto config = FastConfig(*emu_, kTable);
  config.ack_timeout_ms = 100;
  config.recovery_retries = 0;
  config.retry_max_attempts = 1;
  auto w = MakeWrapper(config);
  emulator::FaultRule rule;
  rule.ack_delay_ms = 600;
  AddFault(rule);
  auto r = Send(w, MakeRows(0, 30));
  EXPECT_EQ(r.failed_count, 30);
  EXPECT_EQ(r.attempts, 1);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Retry exhausted: gave up after 1 attempts"));
}

TEST_F(WrapperTest, CloseSignalSwitchesStreamsWithoutLosingRows) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  emulator::FaultRule rule;
  rule.close_signal = emulator::CloseSignalFault{1, 100};
  rule.times = 1;
  AddFault(rule);
  int64_t successful = 0;
  for (int i = 0; i < 4; ++i) successful += Send(w, MakeRows(i * 50, 50)).successful_count;
  EXPECT_EQ(successful, 200);
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  ASSERT_EQ(s.streams.size(), 1u);
  EXPECT_EQ(s.streams[0].current.close_signals, 1);
  EXPECT_GE(s.streams[0].current.rpcs_opened, 2);
  EXPECT_EQ(TableRows(*emu_, kTable), s.rows_successful + s.replayed_records);
  EXPECT_GE(EmulatorStreams(*emu_, kTable).size(), 2u);
}

TEST_F(WrapperTest, ExpiredTokenIsRefreshedWhenTheStreamReopens) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  ASSERT_EQ(Send(w, MakeRows(0, 40)).successful_count, 40);
  const int64_t issued = emu_->Stats()["tokens_issued"].get<int64_t>();
  emu_->tokens().ExpireAll();
  AddFault(EndStream(2, kUnavailable, "6002 Stream timeout reached", 1));
  auto r = Send(w, MakeRows(40, 40));
  EXPECT_EQ(r.successful_count, 40);
  EXPECT_GT(emu_->Stats()["tokens_issued"].get<int64_t>(), issued);
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  EXPECT_EQ(TableRows(*emu_, kTable), s.rows_successful + s.replayed_records);
}

TEST_F(WrapperTest, PipelineBlockedRefusalStartsACooldown) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;
  config.pipeline_blocked_cooldown_ms = 1000;
  auto w = MakeWrapper(config);
  // Blocked until lifted below: the refusal does not depend on how fast the send gets there.
  emu_->faults().BlockCreation(kTable, std::chrono::minutes(1));
  auto r = Send(w, MakeRows(0, 30));
  emu_->faults().Clear();
  EXPECT_EQ(emu_->faults().creations_refused(), 1);
  EXPECT_EQ(r.failed_count, 30);
  EXPECT_EQ(r.attempts, 1);  // no retry into a blocked pipeline
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, HasSubstr("6006"));
  EXPECT_THAT(*r.error, HasSubstr("cool-down"));
  auto cd = w.cooldown();
  ASSERT_TRUE(cd.has_value());
  EXPECT_THAT(cd->reason, HasSubstr("6006"));
  EXPECT_GT(cd->remaining.count(), 0);
  EXPECT_LE(cd->remaining.count(), 1000);

  // During the cool-down: fail fast, every row reported, nothing opened.
  const int64_t open_failures = w.stats().stream_open_failures;
  auto fast = Send(w, MakeRows(30, 30));
  EXPECT_EQ(fast.failed_count, 30);
  ASSERT_TRUE(fast.error.has_value());
  EXPECT_THAT(*fast.error, HasSubstr("cool-down in force after pipeline creation was blocked"));
  EXPECT_THAT(*fast.error, HasSubstr(" ms more"));
  ASSERT_TRUE(fast.latency_ms.has_value());
  EXPECT_LT(*fast.latency_ms, 50.0);
  EXPECT_EQ(w.stats().stream_open_failures, open_failures);
  EXPECT_EQ(w.stats().batches_refused_in_cooldown, 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  EXPECT_FALSE(w.cooldown().has_value());
  auto after = Send(w, MakeRows(60, 30));
  EXPECT_EQ(after.successful_count, 30);
}

TEST_F(WrapperTest, FailureRateCooldownCountsOnlyServiceFailures) {
  auto config = FastConfig(*emu_, kTable);
  config.failure_rate_threshold = 0.01;
  config.failure_rate_min_rows = 100;
  config.failure_cooldown_ms = 300;
  auto w = MakeWrapper(config);
  // Bad rows are the data's fault: no cool-down.
  std::vector<int64_t> nulls;
  for (int64_t i = 0; i < 200; i += 2) nulls.push_back(i);
  auto bad = Send(w, MakeRowsWithNullIds(0, 200, nulls));
  EXPECT_EQ(bad.failed_count, 100);
  EXPECT_FALSE(w.cooldown().has_value());

  // A permanent refusal is the setup's fault, not the service's: no cool-down.
  AddFault(EndStream(1, kInvalidArgument, "refused", 1));
  auto refused = Send(w, MakeRows(500, 200));
  EXPECT_EQ(refused.failed_count, 200);
  EXPECT_FALSE(w.cooldown().has_value());

  // Transient failures on every stream until the retries run out: the service struggles.
  AddFault(EndStream(1, kUnavailable, "unavailable", 0));
  // Fewer rows than failure_rate_min_rows: no cool-down either.
  auto small = Send(w, MakeRows(1000, 50));
  EXPECT_EQ(small.failed_count, 50);
  EXPECT_FALSE(w.cooldown().has_value());
  auto big = Send(w, MakeRows(2000, 200));
  EXPECT_EQ(big.failed_count, 200);
  emu_->faults().Clear();
  auto cd = w.cooldown();
  ASSERT_TRUE(cd.has_value());
  EXPECT_THAT(cd->reason, HasSubstr("failure rate of 100.0%"));

  auto fast = Send(w, MakeRows(3000, 200));
  EXPECT_EQ(fast.failed_count, 200);
  ASSERT_TRUE(fast.error.has_value());
  EXPECT_THAT(*fast.error, HasSubstr("cool-down in force after a failure rate"));

  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  auto after = Send(w, MakeRows(4000, 200));
  EXPECT_EQ(after.successful_count, 200);
}

TEST_F(WrapperTest, CooldownsArePerWrapper) {
  auto config = FastConfig(*emu_, kTable);
  config.recovery_retries = 0;
  config.pipeline_blocked_cooldown_ms = 5000;
  auto blocked = MakeWrapper(config);
  emu_->faults().BlockCreation(kTable, std::chrono::minutes(1));
  EXPECT_EQ(Send(blocked, MakeRows(0, 10)).failed_count, 10);
  ASSERT_TRUE(blocked.cooldown().has_value());
  emu_->faults().Clear();  // the pipeline is free again; only `blocked` remembers the refusal
  auto other = MakeWrapper(config);
  EXPECT_FALSE(other.cooldown().has_value());
  EXPECT_EQ(Send(other, MakeRows(10, 10)).successful_count, 10);
  EXPECT_EQ(Send(blocked, MakeRows(20, 10)).failed_count, 10);  // still cooling down
}

TEST_F(WrapperTest, RateLimitedAcksArePacedAndEveryRowLands) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  emulator::FaultRule rule;
  rule.max_records_per_s = 2000;
  AddFault(rule);
  const auto start = std::chrono::steady_clock::now();
  int64_t successful = 0;
  for (int i = 0; i < 4; ++i) successful += Send(w, MakeRows(i * 100, 100)).successful_count;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(successful, 400);
  EXPECT_GE(seconds, 0.15);  // 400 records at 2000/s
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_EQ(TableRows(*emu_, kTable), 400);
}

TEST_F(WrapperTest, EightConcurrentSendersEveryRowAccounted) {
  auto config = FastConfig(*emu_, kTable);
  config.streams_per_table = 2;
  auto w = MakeWrapper(config);
  constexpr int kThreads = 8, kBatches = 6, kRows = 100;
  std::atomic<int64_t> successful{0}, failed{0}, bad_results{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t, w]() mutable {  // each thread its own copy of the handle
      for (int b = 0; b < kBatches; ++b) {
        auto batch = MakeRows((t * kBatches + b) * kRows, kRows);
        auto r = w.SendBatch(*batch);
        if (!r.ok() || !r->CheckInvariants().ok() || r->total_rows != kRows) {
          ++bad_results;
          continue;
        }
        successful += r->successful_count;
        failed += r->failed_count;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad_results.load(), 0);
  EXPECT_EQ(successful.load(), kThreads * kBatches * kRows);
  EXPECT_EQ(failed.load(), 0);
  ASSERT_TRUE(w.Flush().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  std::sort(ids->begin(), ids->end());
  ASSERT_EQ(static_cast<int64_t>(ids->size()), int64_t{kThreads} * kBatches * kRows);
  for (int64_t i = 0; i < static_cast<int64_t>(ids->size()); ++i) ASSERT_EQ((*ids)[i], i);
  EXPECT_EQ(w.stats().rows_successful, int64_t{kThreads} * kBatches * kRows);
}

TEST_F(WrapperTest, EightConcurrentSendersThroughAStreamBreak) {
  auto config = FastConfig(*emu_, kTable);
  config.streams_per_table = 2;
  auto w = MakeWrapper(config);
  AddFault(EndStream(5, kUnavailable, "6002 Stream timeout reached", 1));
  constexpr int kThreads = 8, kBatches = 5, kRows = 100;
  std::mutex mu;
  std::vector<TransmissionResult> results;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        auto r = w.SendBatch(*MakeRows((t * kBatches + b) * kRows, kRows));
        std::lock_guard<std::mutex> lk(mu);
        if (r.ok()) results.push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(results.size(), size_t{kThreads} * kBatches);
  for (const auto& r : results) {
    ExpectAccounted(r, kRows);
    EXPECT_EQ(r.successful_count, kRows) << r.ToString();
  }
  ASSERT_TRUE(w.Flush().ok());
  const WrapperStats s = w.stats();
  EXPECT_EQ(s.rows_successful, int64_t{kThreads} * kBatches * kRows);
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  const std::set<int64_t> distinct(ids->begin(), ids->end());
  EXPECT_EQ(static_cast<int64_t>(distinct.size()), s.rows_successful);  // every row landed
  // Duplicates only from replays (requests the server had not read before the break were
  // replayed without having landed, so this is an upper bound).
  EXPECT_LE(static_cast<int64_t>(ids->size()), s.rows_successful + s.replayed_records);
  EXPECT_GT(s.replayed_records, 0);
}

TEST_F(WrapperTest, RejectWhenFullIsRetriedAndEveryRowAccounted) {
  auto config = FastConfig(*emu_, kTable);
  config.when_inflight_full = InFlightFullPolicy::kReject;
  config.max_inflight_requests = 1;
  config.retry_max_attempts = 50;
  config.retry_base_delay_ms = 1;
  config.retry_max_delay_ms = 10;
  auto w = MakeWrapper(config);
  ASSERT_EQ(Send(w, MakeRows(0, 10)).successful_count, 10);  // the stream is open
  emulator::FaultRule rule;
  rule.ack_delay_ms = 20;  // keeps a request in flight while others arrive
  AddFault(rule);
  constexpr int kThreads = 4, kBatches = 3, kRows = 50;
  std::atomic<int64_t> successful{0}, failed{0}, retried_batches{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        auto r = w.SendBatch(*MakeRows(1000 + (t * kBatches + b) * kRows, kRows));
        if (!r.ok() || !r->CheckInvariants().ok() || r->total_rows != kRows) {
          ++bad;
          continue;
        }
        successful += r->successful_count;
        failed += r->failed_count;
        if (r->attempts > 1) ++retried_batches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(successful.load() + failed.load(), kThreads * kBatches * kRows);
  EXPECT_GT(retried_batches.load(), 0);  // some admissions were refused and retried
  ASSERT_TRUE(w.Flush().ok());
  // A refused request never went out: no duplicates.
  EXPECT_EQ(w.stats().replayed_records, 0);
  EXPECT_EQ(TableRows(*emu_, kTable), 10 + successful.load());
}

TEST_F(WrapperTest, BatchesAreSpreadOverTheStreams) {
  auto config = FastConfig(*emu_, kTable);
  config.streams_per_table = 3;
  auto w = MakeWrapper(config);
  for (int i = 0; i < 9; ++i) ASSERT_EQ(Send(w, MakeRows(i * 100, 100)).successful_count, 100);
  const auto streams = EmulatorStreams(*emu_, kTable);
  ASSERT_EQ(streams.size(), 3u);
  for (const auto& s : streams) {
    EXPECT_EQ(s.requests, 3) << s.stream_id;
    EXPECT_EQ(s.rows, 300) << s.stream_id;
  }
  const WrapperStats stats = w.stats();
  ASSERT_EQ(stats.streams.size(), 3u);
  for (const auto& s : stats.streams) {
    EXPECT_TRUE(s.open);
    EXPECT_EQ(s.records_acked, 300);
    EXPECT_EQ(s.inflight_bytes, 0);
  }
  EXPECT_EQ(stats.streams_opened, 3);
}

TEST_F(WrapperTest, ShutdownIsIdempotentAndRefusesLaterSends) {
  auto w = MakeWrapper(FastConfig(*emu_, kTable));
  ASSERT_EQ(Send(w, MakeRows(0, 10)).successful_count, 10);
  ZerobusWrapper copy = w;  // a copy shares the wrapper
  ASSERT_TRUE(copy.Shutdown().ok());
  EXPECT_TRUE(w.is_shutdown());
  EXPECT_TRUE(w.Shutdown().ok());
  EXPECT_TRUE(w.Flush().ok());
  auto r = w.SendBatch(*MakeRows(10, 10));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("shut down"));
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kTransmission);
  // The stream was closed cleanly: the server saw the RPC end (its bookkeeping may lag a moment
  // behind the client's).
  std::vector<EmulatorStream> streams;
  for (int i = 0; i < 200; ++i) {
    streams = EmulatorStreams(*emu_, kTable);
    if (streams.size() == 1 && !streams[0].open) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_FALSE(streams[0].open);
  EXPECT_EQ(TableRows(*emu_, kTable), 10);
}

// A send still waiting to be admitted (the in-flight budget is full) when Shutdown starts: a
// Shutdown that closed the streams without waiting would fail its rows; waiting, both land.
TEST_F(WrapperTest, ShutdownWaitsForSendsInProgress) {
  auto config = FastConfig(*emu_, kTable);
  config.max_inflight_requests = 1;
  auto w = MakeWrapper(config);
  emulator::FaultRule rule;
  rule.ack_delay_ms = 300;
  AddFault(rule);
  auto first = w.SendBatchAsync(*MakeRows(0, 25));
  ASSERT_TRUE(first.ok());
  std::optional<arrow::Result<TransmissionResult>> second;
  std::thread sender([&] { second = w.SendBatch(*MakeRows(100, 25)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // blocked on the budget
  ASSERT_FALSE(first->is_finished());
  ASSERT_TRUE(w.Shutdown().ok());
  // Shutdown returned: every send that was in progress has its outcome.
  EXPECT_TRUE(first->is_finished());
  sender.join();
  EXPECT_EQ(first->result()->successful_count, 25);
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->ok());
  EXPECT_EQ((*second)->successful_count, 25) << (*second)->error.value_or("");
}

TEST_F(WrapperTest, GivenDescriptorBindsBatchesByName) {
  auto config = FastConfig(*emu_, kTable);
  config.descriptor_source = DescriptorSource::kGiven;
  DescriptorOptions dopts;
  dopts.message_name = "Event";
  config.descriptor = DescriptorFromArrowSchema(*RowSchema(), dopts).ValueOrDie();
  auto w = MakeWrapper(config);
  // Columns in another order, id as int32: bound to the given int64 field by name.
  auto schema = arrow::schema({arrow::field("name", arrow::utf8()),
                               arrow::field("id", arrow::int32(), false)});
  arrow::StringBuilder names;
  arrow::Int32Builder ids;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(names.Append("x").ok());
    ASSERT_TRUE(ids.Append(i).ok());
  }
  auto batch = arrow::RecordBatch::Make(schema, 20,
                                        {names.Finish().ValueOrDie(), ids.Finish().ValueOrDie()});
  EXPECT_EQ(Send(w, batch).successful_count, 20);
  auto descriptor = w.DescriptorFor(schema);
  ASSERT_TRUE(descriptor.ok());
  EXPECT_EQ(descriptor->name(), "Event");

  // A column the descriptor does not have: the whole batch fails, naming it.
  auto extra = arrow::schema({arrow::field("id", arrow::int64(), false),
                              arrow::field("extra", arrow::utf8())});
  auto extra_batch = arrow::RecordBatch::Make(extra, 20, MakeRows(0, 20)->columns());
  auto r = Send(w, extra_batch);
  EXPECT_EQ(r.failed_count, 20);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Conversion error: "));
  EXPECT_THAT(*r.error, HasSubstr("extra"));
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_EQ(TableRows(*emu_, kTable), 20);
}

// record_type json: the same rows go as JSON text; the table (which must exist: JSON streams
// carry no descriptor) holds exactly the values sent.
TEST(WrapperJsonTest, JsonRowsLandWithTheirValues) {
  ClearTokenCache();
  TempDir dir;
  const std::string table = "main.default.json_events";
  auto point = arrow::struct_({arrow::field("x", arrow::int32()), arrow::field("y", arrow::int32())});
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("name", arrow::utf8()),
                               arrow::field("score", arrow::float64()),
                               arrow::field("day", arrow::date32()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                               arrow::field("amount", arrow::decimal128(10, 2)),
                               arrow::field("data", arrow::binary()),
                               arrow::field("tags", arrow::list(arrow::field("element", arrow::utf8()))),
                               arrow::field("point", point),
                               arrow::field("attrs", arrow::map(arrow::utf8(), arrow::int64()))});
  auto emu = StartEmulator(dir.path(), {{table, schema}}, /*strict=*/true);
  ASSERT_NE(emu, nullptr);
  auto config = FastConfig(*emu, table);
  config.record_type = RecordFormat::kJson;
  auto w = ZerobusWrapper::Make(config).ValueOrDie();

  constexpr int64_t n = 50;
  arrow::Int64Builder id;
  arrow::StringBuilder name;
  arrow::DoubleBuilder score;
  arrow::Date32Builder day;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::Decimal128Builder amount(arrow::decimal128(10, 2));
  arrow::BinaryBuilder data;
  auto tag_values = std::make_shared<arrow::StringBuilder>();
  arrow::ListBuilder tags(arrow::default_memory_pool(), tag_values,
                          arrow::list(arrow::field("element", arrow::utf8())));
  auto x = std::make_shared<arrow::Int32Builder>();
  auto y = std::make_shared<arrow::Int32Builder>();
  arrow::StructBuilder pt(point, arrow::default_memory_pool(), {x, y});
  auto keys = std::make_shared<arrow::StringBuilder>();
  auto values = std::make_shared<arrow::Int64Builder>();
  arrow::MapBuilder attrs(arrow::default_memory_pool(), keys, values);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(id.Append(i).ok());
    ASSERT_TRUE((i % 4 == 0 ? name.AppendNull() : name.Append("n\"" + std::to_string(i) + "\n")).ok());
    ASSERT_TRUE(score.Append(i * 0.25 - 3).ok());
    ASSERT_TRUE(day.Append(static_cast<int32_t>(19000 + i)).ok());
    ASSERT_TRUE(ts.Append(1'700'000'000'000'000 + i * 1'000'003).ok());
    ASSERT_TRUE(amount.Append(arrow::Decimal128(i * 101 - 2000)).ok());
    ASSERT_TRUE(data.Append(std::string(static_cast<size_t>(i % 5), static_cast<char>(i))).ok());
    ASSERT_TRUE(tags.Append().ok());
    for (int64_t k = 0; k < i % 3; ++k) ASSERT_TRUE(tag_values->Append("t" + std::to_string(k)).ok());
    if (i % 6 == 5) {
      ASSERT_TRUE(pt.AppendNull().ok());
    } else {
      ASSERT_TRUE(pt.Append().ok());
      ASSERT_TRUE(x->Append(static_cast<int32_t>(i)).ok());
      ASSERT_TRUE(y->Append(static_cast<int32_t>(-i)).ok());
    }
    ASSERT_TRUE(attrs.Append().ok());
    ASSERT_TRUE(keys->Append("k" + std::to_string(i)).ok());
    ASSERT_TRUE(values->Append(i * 1000).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (arrow::ArrayBuilder* b : std::initializer_list<arrow::ArrayBuilder*>{
           &id, &name, &score, &day, &ts, &amount, &data, &tags, &pt, &attrs}) {
    columns.push_back(b->Finish().ValueOrDie());
  }
  auto batch = arrow::RecordBatch::Make(schema, n, columns);
  auto r = w.SendBatch(*batch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectAccounted(*r, n);
  ASSERT_EQ(r->successful_count, n) << r->ToString();
  ASSERT_TRUE(w.Shutdown().ok());

  auto stored = ReadDeltaTable(*emu, table);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ((*stored)->num_rows(), n);
  // Cell by cell (rows arrive in order on one stream).
  for (int c = 0; c < schema->num_fields(); ++c) {
    auto column = (*stored)->GetColumnByName(schema->field(c)->name());
    ASSERT_NE(column, nullptr) << schema->field(c)->name();
    for (int64_t i = 0; i < n; ++i) {
      auto got = column->GetScalar(i).ValueOrDie();
      auto want = batch->column(c)->GetScalar(i).ValueOrDie();
      // A map's type text names its field, which Parquet renames: compare the entries.
      auto text = [](const arrow::Scalar& v) {
        if (v.is_valid && v.type->id() == arrow::Type::MAP) {
          return static_cast<const arrow::MapScalar&>(v).value->ToString();
        }
        return v.ToString();
      };
      ASSERT_EQ(text(*got), text(*want)) << schema->field(c)->name() << " row " << i;
    }
  }
}

TEST_F(WrapperTest, CallerSuppliedHeadersProviderReplacesOAuth) {
  auto config = FastConfig(*emu_, kTable);
  config.client_id.reset();
  config.client_secret.reset();
  config.unity_catalog_url.reset();
  const std::string token = emu_->tokens().IssueForTesting(kClientId, {kTable},
                                                            std::chrono::seconds(3600));
  auto made = ZerobusWrapper::Make(
      config, MakeStaticHeadersProvider({{"authorization", "Bearer " + token}}));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto w = *made;
  EXPECT_EQ(Send(w, MakeRows(0, 25)).successful_count, 25);
  // A provider without the token: the server refuses the stream; every row says so.
  auto anonymous = ZerobusWrapper::Make(config, MakeStaticHeadersProvider({})).ValueOrDie();
  auto r = Send(anonymous, MakeRows(25, 25));
  EXPECT_EQ(r.failed_count, 25);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, StartsWith("Authentication error: "));
  EXPECT_THAT(*r.error, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(*r.error, Not(HasSubstr(token)));
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_EQ(TableRows(*emu_, kTable), 25);
}

TEST(WrapperNoAuthTest, LocalServerWithoutAuthNeedsNoCredentials) {
  TempDir dir;
  auto o = emulator::EmulatorOptions::Defaults();
  o.data_dir = dir.path();
  o.commit_interval_ms = 2;
  o.fsync = false;
  o.no_auth = true;
  emulator::Emulator emu(o);
  ASSERT_TRUE(emu.Start().ok());
  auto config = WrapperConfiguration::Make(emu.grpc_endpoint(), kTable);
  auto w = ZerobusWrapper::Make(config, MakeStaticHeadersProvider({})).ValueOrDie();
  auto r = w.SendBatch(*MakeRows(0, 40));
  ASSERT_TRUE(r.ok());
  ExpectAccounted(*r, 40);
  EXPECT_EQ(r->successful_count, 40);
  ASSERT_TRUE(w.Shutdown().ok());
  EXPECT_EQ(TableRows(emu, kTable), 40);
}

TEST(WrapperUnityCatalogTest, DescriptorFromTheTableBindsBatchesByName) {
  ClearTokenCache();
  TempDir dir;
  const std::string table = "main.default.uc_events";
  auto table_schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                                     arrow::field("score", arrow::float64()),
                                     arrow::field("tags", arrow::list(arrow::utf8())),
                                     arrow::field("name", arrow::utf8())});
  auto emu = StartEmulator(dir.path(), {{table, table_schema}}, /*strict=*/true);
  ASSERT_NE(emu, nullptr);
  auto config = FastConfig(*emu, table);
  config.descriptor_source = DescriptorSource::kUnityCatalog;
  auto made = ZerobusWrapper::Make(config);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto w = *made;

  // The batch has no `tags` (nullable: left out), other column order, a narrower id type.
  auto schema = arrow::schema({arrow::field("name", arrow::utf8()),
                               arrow::field("score", arrow::float64()),
                               arrow::field("id", arrow::int32(), false)});
  arrow::StringBuilder names;
  arrow::DoubleBuilder scores;
  arrow::Int32Builder ids;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(names.Append("n" + std::to_string(i)).ok());
    ASSERT_TRUE(scores.Append(i * 0.5).ok());
    ASSERT_TRUE(ids.Append(i).ok());
  }
  auto batch = arrow::RecordBatch::Make(
      schema, 30,
      {names.Finish().ValueOrDie(), scores.Finish().ValueOrDie(), ids.Finish().ValueOrDie()});
  auto descriptor = w.DescriptorFor(schema);
  ASSERT_TRUE(descriptor.ok()) << descriptor.status().ToString();
  ASSERT_EQ(descriptor->field_size(), 4);
  EXPECT_EQ(descriptor->field(0).name(), "id");
  EXPECT_EQ(descriptor->field(0).number(), 1);
  EXPECT_EQ(descriptor->field(0).label(), FieldDescriptorProto::LABEL_REQUIRED);
  EXPECT_EQ(descriptor->field(2).name(), "tags");
  EXPECT_EQ(descriptor->field(2).label(), FieldDescriptorProto::LABEL_REPEATED);

  auto r = w.SendBatch(*batch);
  ASSERT_TRUE(r.ok());
  ExpectAccounted(*r, 30);
  EXPECT_EQ(r->successful_count, 30) << r->ToString();
  ASSERT_TRUE(w.Flush().ok());
  auto read = ReadDeltaIds(*emu, table);
  ASSERT_TRUE(read.ok());
  std::sort(read->begin(), read->end());
  ASSERT_EQ(read->size(), 30u);
  EXPECT_EQ(read->back(), 29);
}

TEST(WrapperUnityCatalogTest, UnknownTableFailsTheBatchWithAConfigurationError) {
  ClearTokenCache();
  TempDir dir;
  auto emu = StartEmulator(dir.path(), {}, /*strict=*/true);
  ASSERT_NE(emu, nullptr);
  auto config = FastConfig(*emu, "main.default.missing");
  config.descriptor_source = DescriptorSource::kUnityCatalog;
  auto w = ZerobusWrapper::Make(config).ValueOrDie();
  auto r = w.SendBatch(*MakeRows(0, 5));
  ASSERT_TRUE(r.ok());
  ExpectAccounted(*r, 5);
  EXPECT_EQ(r->failed_count, 5);
  ASSERT_TRUE(r->error.has_value());
  EXPECT_THAT(*r->error, StartsWith("Configuration error: table_name: "));
  EXPECT_THAT(*r->error, HasSubstr("does not exist"));
  EXPECT_THAT(*r->error, Not(HasSubstr(kClientSecret)));
}

// Record ids of a protobuf debug file, parsed with the descriptor written beside it.
std::vector<int64_t> IdsOfProtobufFile(const std::string& path) {
  auto file = ReadProtobufDebugFile(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return {};
  google::protobuf::FileDescriptorProto fdp;
  fdp.set_name("debug.proto");
  fdp.set_syntax("proto2");
  *fdp.add_message_type() = file->descriptor;
  google::protobuf::DescriptorPool pool;
  const auto* fd = pool.BuildFile(fdp);
  EXPECT_NE(fd, nullptr);
  if (fd == nullptr) return {};
  const auto* message = fd->message_type(0);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::vector<int64_t> ids;
  for (const auto& record : file->records) {
    std::unique_ptr<google::protobuf::Message> m(factory.GetPrototype(message)->New());
    EXPECT_TRUE(m->ParseFromString(record));
    ids.push_back(m->GetReflection()->GetInt64(*m, message->FindFieldByName("id")));
  }
  return ids;
}

TEST_F(WrapperTest, DebugFilesHoldEveryBatchAndEveryEncodedRecord) {
  TempDir debug_dir;
  auto config = FastConfig(*emu_, kTable);
  config.debug_enabled = true;
  config.debug_output_dir = debug_dir.path();
  auto w = MakeWrapper(config);
  EXPECT_EQ(Send(w, MakeRows(0, 40)).successful_count, 40);
  EXPECT_EQ(Send(w, MakeRowsWithNullIds(40, 40, {0})).successful_count, 39);
  ASSERT_TRUE(w.Shutdown().ok());

  auto arrow_files = ListDebugFiles(debug_dir.path(), kTable, DebugFormat::kArrow);
  ASSERT_TRUE(arrow_files.ok());
  int64_t arrow_rows = 0;
  for (const auto& f : *arrow_files) {
    auto t = ReadArrowDebugFile(f);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    arrow_rows += (*t)->num_rows();
  }
  EXPECT_EQ(arrow_rows, 80);  // every batch as given, the bad row included

  auto pb_files = ListDebugFiles(debug_dir.path(), kTable, DebugFormat::kProtobuf);
  ASSERT_TRUE(pb_files.ok());
  std::vector<int64_t> ids;
  for (const auto& f : *pb_files) {
    auto part = IdsOfProtobufFile(f);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 80; ++i) {
    if (i != 40) expected.push_back(i);
  }
  EXPECT_EQ(ids, expected);  // every encoded record, in order
}

TEST_F(WrapperTest, TelemetryRecordsEverySendAndExportsOnShutdown) {
  TempDir otlp_dir;
  auto config = FastConfig(*emu_, kTable);
  config.observability_enabled = true;
  ObservabilityConfig oc;
  oc.output_dir = otlp_dir.path();
  oc.write_interval_secs = 60;  // only the final export on shutdown
  config.observability_config = oc;
  auto w = MakeWrapper(config);
  Send(w, MakeRows(0, 30));
  Send(w, MakeRowsWithNullIds(30, 30, {1, 2}));
  auto snap = w.telemetry();
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->batches, 2);
  EXPECT_EQ(snap->rows, 60);
  EXPECT_EQ(snap->rows_successful, 58);
  EXPECT_EQ(snap->rows_failed_by_kind["ConversionError"], 2);
  EXPECT_EQ(snap->spans_recorded, 2);
  EXPECT_EQ(snap->latency.count, 2);
  ASSERT_TRUE(w.Shutdown().ok());
  const fs::path metrics = fs::path(otlp_dir.path()) / "otlp-metrics.jsonl";
  ASSERT_TRUE(fs::exists(metrics));
  std::ifstream in(metrics);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(all, HasSubstr("zerobus.rows"));
  EXPECT_THAT(all, HasSubstr(kTable));
  EXPECT_THAT(all, Not(HasSubstr(kClientSecret)));
}

TEST_F(WrapperTest, SchemasWithDifferentDescriptorsUseTheirOwnStreams) {
  auto w = MakeWrapper(FastConfig(*emu_, "main.default.first"));
  EXPECT_EQ(Send(w, MakeRows(0, 10)).successful_count, 10);
  // Same columns with nullable id: another descriptor (optional id), so another stream; the
  // table made from the first descriptor refuses it (NOT NULL column, optional field).
  auto nullable = arrow::schema({arrow::field("id", arrow::int64()),
                                 arrow::field("name", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(nullable, 10, MakeRows(10, 10)->columns());
  auto r = Send(w, batch);
  EXPECT_EQ(r.failed_count, 10);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, HasSubstr("INVALID_ARGUMENT"));
  // The first schema's stream is untouched.
  EXPECT_EQ(Send(w, MakeRows(20, 10)).successful_count, 10);
  EXPECT_EQ(w.stats().streams.size(), 2u);
}

// A feed of ever-new schemas: encoders are kept least recently used, and a stream pool no cached
// encoder uses is evicted with its streams closed, so streams (threads, channels, sockets) stay
// bounded while every row still lands.
TEST_F(WrapperTest, EverNewSchemasKeepStreamsBounded) {
  constexpr int kSchemas = 70;
  arrow::FieldVector table_fields = {arrow::field("id", arrow::int64(), false)};
  for (int i = 0; i < kSchemas; ++i) {
    table_fields.push_back(arrow::field("x" + std::to_string(i), arrow::int64()));
  }
  ASSERT_TRUE((emu_->store().Declare("main.default.wide", arrow::schema(table_fields))).ok());
  auto w = MakeWrapper(FastConfig(*emu_, "main.default.wide"));
  for (int i = 0; i < kSchemas; ++i) {
    // id plus one of the nullable columns: another descriptor each time, all fit the table.
    auto schema = arrow::schema({table_fields[0], table_fields[static_cast<size_t>(i) + 1]});
    arrow::Int64Builder ids, xs;
    ASSERT_TRUE((ids.AppendValues({i * 2, i * 2 + 1})).ok());
    ASSERT_TRUE((xs.AppendValues({i, i})).ok());
    auto batch = arrow::RecordBatch::Make(schema, 2, {*ids.Finish(), *xs.Finish()});
    auto r = Send(w, batch);
    ASSERT_EQ(r.successful_count, 2) << i << ": " << r.error.value_or("");
  }
  const WrapperStats stats = w.stats();
  EXPECT_LE(stats.streams.size(), 64u);
  EXPECT_EQ(stats.pools_evicted, kSchemas - 64);
  EXPECT_EQ(stats.streams_opened, kSchemas);
  // The first schema's pool was evicted: sending it again opens a fresh stream and lands.
  auto schema0 = arrow::schema({table_fields[0], table_fields[1]});
  arrow::Int64Builder ids, xs;
  ASSERT_TRUE((ids.AppendValues({1000})).ok());
  ASSERT_TRUE((xs.AppendValues({0})).ok());
  EXPECT_EQ(Send(w, arrow::RecordBatch::Make(schema0, 1, {*ids.Finish(), *xs.Finish()}))
                .successful_count,
            1);
  EXPECT_EQ(w.stats().streams_opened, kSchemas + 1);
  ASSERT_TRUE((w.Shutdown()).ok());
  auto ids_in_table = ReadDeltaIds(*emu_, "main.default.wide");
  ASSERT_TRUE((ids_in_table.status()).ok());
  EXPECT_EQ(ids_in_table->size(), static_cast<size_t>(2 * kSchemas + 1));
}

}  // namespace
}  // namespace arrow_zerobus::testing
