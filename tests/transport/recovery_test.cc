// Recovery under every fault the emulator can inject. Each test checks that every request ends
// acked or failed exactly once, that nothing is lost (rows read back from the Delta table), and
// that the replay count the client reports matches what happened on the wire.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/errors.h"
#include "client_test_util.h"
#include "server/auth.h"

namespace arrow_zerobus::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "main.client.rows";

struct Sent {
  std::vector<arrow::Future<IngestAck>> futures;
  std::vector<EncodedBatch> batches;
  int64_t rows = 0;
};

// `n` requests of `rows_per` rows each, ids from `first_id`.
Sent SendRequests(ZerobusStream& s, int n, int rows_per, int64_t first_id = 0) {
  Sent out;
  for (int i = 0; i < n; ++i) {
    out.batches.push_back(EncodeRows(*MakeRows(first_id + i * rows_per, rows_per)));
    EXPECT_EQ(out.batches.back().chunks.size(), 1u);
    auto f = s.IngestChunk(out.batches.back(), out.batches.back().chunks[0]);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (f.ok()) out.futures.push_back(*f);
    out.rows += rows_per;
  }
  return out;
}

// Every id in [0, rows) is in the table; none more than `max_copies` times; returns the count
// of stored rows.
int64_t ExpectAllRowsStored(emulator::Emulator& emu, int64_t rows, int max_copies) {
  auto ids = ReadDeltaIds(emu, kTable);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  if (!ids.ok()) return -1;
  std::map<int64_t, int> count;
  for (int64_t id : *ids) ++count[id];
  EXPECT_EQ(static_cast<int64_t>(count.size()), rows) << "distinct ids";
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_GE(count[i], 1) << "row " << i << " lost";
    EXPECT_LE(count[i], max_copies) << "row " << i;
    if (count[i] < 1 || count[i] > max_copies) break;
  }
  return static_cast<int64_t>(ids->size());
}

// The replay count equals the re-sends the acks report.
void ExpectReplayAccounting(const Sent& sent, const StreamStats& st) {
  int64_t extra_sends = 0, extra_records = 0;
  for (const auto& f : sent.futures) {
    if (!f.is_finished() || !f.status().ok()) continue;
    extra_sends += f.result()->sends - 1;
    extra_records += (f.result()->sends - 1) * f.result()->num_records;
  }
  EXPECT_EQ(st.requests_replayed, extra_sends);
  EXPECT_EQ(st.records_replayed, extra_records);
}

template <typename Pred>
bool WaitFor(Pred pred, milliseconds timeout = milliseconds(10000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tokens cached for an earlier test's emulator (when tests share a process, as with
    // --gtest_repeat) are refused by this one, which would count as an extra failed attempt.
    ClearTokenCache();
    emu_ = StartEmulator(EmulatorTestOptions(dir_.path()));
    ASSERT_NE(emu_, nullptr);
  }
  emulator::FaultRule Rule() {
    emulator::FaultRule r;
    r.table = kTable;
    return r;
  }
  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

// ---- stream ended mid-flight with each status ------------------------------------------------

struct EndCase {
  const char* name;
  int code;
  const char* message;
};

class RetryableEndTest : public RecoveryTest, public ::testing::WithParamInterface<EndCase> {};

TEST_P(RetryableEndTest, ReopensAndReplaysEverythingUnacked) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto rule = Rule();
  rule.end_stream = emulator::EndStreamFault{3, GetParam().code, GetParam().message};
  rule.times = 1;
  emu_->faults().Add(rule);

  Sent sent = SendRequests(**stream, 20, 100);
  std::vector<arrow::Status> errors;
  EXPECT_EQ(WaitAll(sent.futures, &errors), 20);
  EXPECT_TRUE(errors.empty()) << errors.front().ToString();
  ASSERT_TRUE((*stream)->Close().ok());

  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.rpc_failures, 1);
  EXPECT_EQ(st.rpcs_opened, 2);
  EXPECT_EQ(st.requests_acked, 20);
  EXPECT_EQ(st.records_acked, 2000);
  EXPECT_EQ(st.requests_failed, 0);
  ExpectReplayAccounting(sent, st);
  auto totals = StreamTotals(*emu_, kTable);
  EXPECT_EQ(totals.streams, 2);
  // The first RPC received exactly 3 requests before it was ended; the client wrote at least
  // those and re-sent every one it did not see acked.
  EXPECT_GE(st.requests_sent, 3 + 20 - 3);
  EXPECT_EQ(emu_->Stats()["streams"][0]["requests"].get<int64_t>(), 3);
  EXPECT_GE(totals.requests, 20);
  EXPECT_LE(totals.requests, st.requests_sent);
  const int64_t stored = ExpectAllRowsStored(*emu_, 2000, 2);
  EXPECT_LE(stored, 2000 + st.records_replayed);
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, RetryableEndTest,
    ::testing::Values(EndCase{"Unavailable", 14, "injected: unavailable"},
                      EndCase{"StreamTimeout6002", 14, "6002 Stream timeout reached"},
                      EndCase{"Internal", 13, "injected: internal"},
                      EndCase{"ResourceExhausted", 8, "injected: resource exhausted"},
                      EndCase{"DeadlineExceeded", 4, "injected: deadline"},
                      EndCase{"Aborted", 10, "injected: aborted"},
                      EndCase{"Unknown", 2, "injected: unknown"},
                      EndCase{"Cancelled", 1, "injected: cancelled"},
                      EndCase{"OkBeforeClose", 0, ""}),
    [](const auto& info) { return std::string(info.param.name); });

struct FatalCase {
  const char* name;
  int code;
  ErrorKind kind;
};

class NonRetryableEndTest : public RecoveryTest, public ::testing::WithParamInterface<FatalCase> {};

TEST_P(NonRetryableEndTest, FailsEveryPendingRequestOnceWithTheKind) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  // Acks held back so requests are pending when the stream ends; the end is armed only once
  // 9 requests have arrived, and fires on the 10th, so all 10 are admitted before it.
  auto hold = Rule();
  hold.withhold_acks = true;
  emu_->faults().Add(hold);
  Sent sent = SendRequests(**stream, 9, 50);
  ASSERT_TRUE(WaitFor([&] { return StreamTotals(*emu_, kTable).requests == 9; }));
  auto rule = Rule();
  rule.end_stream = emulator::EndStreamFault{0, GetParam().code, "injected fatal"};
  emu_->faults().Add(rule);
  Sent last = SendRequests(**stream, 1, 50, 450);
  sent.futures.push_back(last.futures[0]);
  sent.batches.push_back(last.batches[0]);
  std::vector<arrow::Status> errors;
  EXPECT_EQ(WaitAll(sent.futures, &errors), 0);
  ASSERT_EQ(errors.size(), 10u);
  for (const auto& e : errors) {
    EXPECT_EQ(GetErrorKind(e), GetParam().kind) << e.ToString();
    EXPECT_FALSE(IsRetryable(e)) << e.ToString();
    EXPECT_THAT(e.message(), ::testing::HasSubstr("injected fatal"));
    EXPECT_THAT(e.message(), ::testing::HasSubstr(std::string(GrpcCodeName(GetParam().code))));
  }
  EXPECT_EQ((*stream)->state(), StreamState::kFailed);
  EXPECT_FALSE((*stream)->final_status().ok());
  // Later calls fail with the same error instead of queueing.
  auto late = (*stream)->IngestRecord(std::string(sent.batches[0].record(0)));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().message(), errors[0].message());
  EXPECT_EQ((*stream)->Flush().message(), errors[0].message());

  // Everything can be taken back, in order, with the original bytes; once.
  auto unacked = (*stream)->TakeUnacked();
  ASSERT_EQ(unacked.size(), 10u);
  for (size_t i = 0; i < unacked.size(); ++i) {
    EXPECT_EQ(unacked[i].seq, static_cast<int64_t>(i));
    EXPECT_EQ(unacked[i].num_records, 50);
    EXPECT_TRUE(unacked[i].batch);
    EXPECT_EQ(unacked[i].bytes, sent.batches[i].framed(sent.batches[i].chunks[0]));
  }
  EXPECT_TRUE((*stream)->TakeUnacked().empty());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.requests_failed, 10);
  EXPECT_EQ(st.requests_acked, 0);
  EXPECT_EQ(st.inflight_requests, 0);
  if (GetParam().kind == ErrorKind::kAuthentication) {
    // Refused credentials get one reopen with a fresh token (which the rule ends at once).
    EXPECT_EQ(st.rpcs_opened, 2);
    EXPECT_EQ(StreamTotals(*emu_, kTable).streams, 2);
    EXPECT_LE(st.requests_replayed, 10);
  } else {
    EXPECT_EQ(st.rpcs_opened, 1);
    EXPECT_EQ(st.requests_replayed, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, NonRetryableEndTest,
    ::testing::Values(FatalCase{"InvalidArgument", 3, ErrorKind::kTransmission},
                      FatalCase{"NotFound", 5, ErrorKind::kTransmission},
                      FatalCase{"Unimplemented", 12, ErrorKind::kTransmission},
                      FatalCase{"OutOfRange", 11, ErrorKind::kTransmission},
                      // Refused credentials: one reopen with a fresh token, then final.
                      FatalCase{"PermissionDenied", 7, ErrorKind::kAuthentication},
                      FatalCase{"Unauthenticated", 16, ErrorKind::kAuthentication}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- acks withheld and delayed ---------------------------------------------------------------

TEST_F(RecoveryTest, WithheldAcksBreakTheRpcAfterTheLackOfAckTimeoutAndReplayExactly) {
  auto o = FastOptions(*emu_, kTable);
  o.server_lack_of_ack_timeout = milliseconds(300);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto rule = Rule();
  rule.withhold_acks = true;
  emu_->faults().Add(rule);

  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 8, 100);
  // Let at least one RPC time out, then let acks through.
  ASSERT_TRUE(WaitFor([&] { return (*stream)->stats().rpc_failures >= 1; }));
  EXPECT_GE(Clock::now() - start, milliseconds(300));
  emu_->faults().Clear();
  std::vector<arrow::Status> errors;
  ASSERT_EQ(WaitAll(sent.futures, &errors), 8);
  ASSERT_TRUE((*stream)->Close().ok());

  const StreamStats st = (*stream)->stats();
  ASSERT_GE(st.rpcs_opened, 2);
  ExpectReplayAccounting(sent, st);
  // Nothing was acked before the last RPC, so every timed-out RPC replays all 8 requests...
  const int64_t broken = st.rpc_failures;
  EXPECT_EQ(st.requests_replayed, 8 * broken);
  EXPECT_EQ(st.records_replayed, 800 * broken);
  // ...and the server received each of them once per RPC and stored them all.
  auto totals = StreamTotals(*emu_, kTable);
  EXPECT_EQ(totals.requests, 8 * (broken + 1));
  EXPECT_EQ(ExpectAllRowsStored(*emu_, 800, static_cast<int>(broken + 1)), 800 * (broken + 1));
}

TEST_F(RecoveryTest, DelayedAcksWithinTheTimeoutNeedNoReplay) {
  auto rule = Rule();
  rule.ack_delay_ms = 150;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 6, 100);
  ASSERT_EQ(WaitAll(sent.futures), 6);
  EXPECT_GE(Clock::now() - start, milliseconds(150));
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.requests_replayed, 0);
  EXPECT_EQ(st.rpc_failures, 0);
  EXPECT_EQ(ExpectAllRowsStored(*emu_, 600, 1), 600);
}

TEST_F(RecoveryTest, AcksSlowerThanTheTimeoutAreReplayedUntilTheyArrive) {
  auto o = FastOptions(*emu_, kTable);
  o.server_lack_of_ack_timeout = milliseconds(200);
  o.recovery_retries = 50;
  auto rule = Rule();
  rule.ack_delay_ms = 400;
  const int64_t id = emu_->faults().Add(rule);
  (void)id;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  Sent sent = SendRequests(**stream, 3, 100);
  ASSERT_TRUE(WaitFor([&] { return (*stream)->stats().rpc_failures >= 2; }));
  emu_->faults().Clear();
  ASSERT_EQ(WaitAll(sent.futures), 3);
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  ExpectReplayAccounting(sent, st);
  EXPECT_GE(st.requests_replayed, 6);
  ExpectAllRowsStored(*emu_, 300, static_cast<int>(st.rpcs_opened));
}

// ---- close signal ----------------------------------------------------------------------------

TEST_F(RecoveryTest, CloseSignalMovesToANewRpcWithoutReplayWhileAcksKeepComing) {
  auto rule = Rule();
  rule.close_signal = emulator::CloseSignalFault{2, 2000};
  rule.times = 1;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 10, 100);
  ASSERT_EQ(WaitAll(sent.futures), 10);
  // The client did not wait for the server's 2 s: everything sent was acked sooner.
  EXPECT_LT(Clock::now() - start, milliseconds(1900));
  Sent more = SendRequests(**stream, 5, 100, 1000);
  ASSERT_EQ(WaitAll(more.futures), 5);
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.close_signals, 1);
  EXPECT_EQ(st.rpcs_opened, 2);
  EXPECT_EQ(st.rpc_failures, 0);
  EXPECT_EQ(st.requests_replayed, 0);
  EXPECT_EQ(StreamTotals(*emu_, kTable).streams, 2);
  EXPECT_EQ(StreamTotals(*emu_, kTable).requests, 15);
  EXPECT_EQ(ExpectAllRowsStored(*emu_, 1500, 1), 1500);
}

TEST_F(RecoveryTest, CloseSignalWaitIsCappedAndUnackedRequestsAreReplayed) {
  auto o = FastOptions(*emu_, kTable);
  o.stream_paused_max_wait = milliseconds(100);
  auto rule = Rule();
  rule.close_signal = emulator::CloseSignalFault{1, 10'000};
  rule.ack_delay_ms = 600;
  rule.times = 1;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 4, 100);
  ASSERT_TRUE(WaitFor([&] { return (*stream)->stats().rpcs_opened >= 2; }));
  // Switched after the client's cap, not the server's 10 s.
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  emu_->faults().Clear();
  ASSERT_EQ(WaitAll(sent.futures), 4);
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.close_signals, 1);
  EXPECT_GE(st.requests_replayed, 1);
  ExpectReplayAccounting(sent, st);
  ExpectAllRowsStored(*emu_, 400, 2);
}

// A server that announces a close far in the future and then stalls: the lack-of-ack bound still
// applies while paused, the unacked requests are replayed on a new RPC, and nothing waits for
// the announced hour.
TEST_F(RecoveryTest, PausedStreamStillHasAnAckTimeout) {
  auto o = FastOptions(*emu_, kTable);
  o.server_lack_of_ack_timeout = milliseconds(500);
  auto rule = Rule();
  rule.close_signal = emulator::CloseSignalFault{1, 3'600'000};
  rule.withhold_acks = true;
  rule.times = 1;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 3, 100);
  ASSERT_TRUE(WaitFor([&] { return (*stream)->stats().rpcs_opened >= 2; }));
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
  emu_->faults().Clear();
  ASSERT_EQ(WaitAll(sent.futures), 3);
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.close_signals, 1);
  EXPECT_GE(st.requests_replayed, 1);
  ExpectReplayAccounting(sent, st);
}

// ---- tokens, 6006, quota, restart ------------------------------------------------------------

TEST_F(RecoveryTest, ExpiredTokenIsDroppedAndAFreshOneFetchedOnReopen) {
  auto o = FastOptions(*emu_, kTable);
  std::shared_ptr<OAuthTokenSource> source;
  o.headers_provider = OAuthProvider(*emu_, kTable, &source);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const int64_t fetched_at_open = source->fetch_count();
  emu_->tokens().ExpireAll();
  auto rule = Rule();
  rule.end_stream = emulator::EndStreamFault{1, 14, "injected: unavailable"};
  rule.times = 1;
  emu_->faults().Add(rule);
  Sent sent = SendRequests(**stream, 4, 100);
  ASSERT_EQ(WaitAll(sent.futures), 4);
  ASSERT_TRUE((*stream)->Close().ok());
  // The reopen with the expired token was refused once, then a new token was fetched.
  EXPECT_EQ(source->fetch_count(), fetched_at_open + 1);
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.rpc_failures, 2);  // the injected end + the UNAUTHENTICATED reopen
  EXPECT_EQ(st.rpcs_opened, 2);
  ExpectAllRowsStored(*emu_, 400, 2);
}

TEST_F(RecoveryTest, PipelineCreationBlocked6006IsRetriedUntilItClears) {
  // The block is lifted once the server has refused two openings, however long the client
  // took to get there.
  emu_->faults().BlockCreation(kTable, std::chrono::minutes(1));
  std::thread lift([this] {
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (emu_->faults().creations_refused() < 2 && Clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    emu_->faults().Clear();
  });
  auto o = FastOptions(*emu_, kTable);
  o.recovery_retries = 100;
  auto stream = ZerobusStream::Open(o);
  lift.join();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_GE(emu_->faults().creations_refused(), 2);
  EXPECT_GE((*stream)->stats().rpc_failures, 2);
  Sent sent = SendRequests(**stream, 2, 10);
  ASSERT_EQ(WaitAll(sent.futures), 2);
  ASSERT_TRUE((*stream)->Close().ok());
}

TEST_F(RecoveryTest, PipelineCreationBlockedLongerThanTheBudgetFailsOpen) {
  emu_->faults().BlockCreation(kTable, milliseconds(60'000));
  auto o = FastOptions(*emu_, kTable);
  o.recovery_retries = 2;
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("6006"));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("gave up after 3 failed attempts"));
  EXPECT_TRUE(IsRetryable(stream.status()));
}

TEST_F(RecoveryTest, RateLimitedAcksArePacedNotFailed) {
  auto rule = Rule();
  rule.max_records_per_s = 4000;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 8, 250);  // 2000 rows at 4000 rows/s
  ASSERT_EQ(WaitAll(sent.futures), 8);
  EXPECT_GE(Clock::now() - start, milliseconds(400));
  ASSERT_TRUE((*stream)->Close().ok());
  EXPECT_EQ((*stream)->stats().requests_replayed, 0);
  EXPECT_EQ(ExpectAllRowsStored(*emu_, 2000, 1), 2000);
}

TEST_F(RecoveryTest, ByteQuotaPacesAcksToo) {
  auto rule = Rule();
  rule.max_bytes_per_s = 40'000;
  emu_->faults().Add(rule);
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const auto start = Clock::now();
  Sent sent = SendRequests(**stream, 4, 250);
  int64_t bytes = 0;
  for (const auto& b : sent.batches) bytes += b.buffer->size();
  ASSERT_EQ(WaitAll(sent.futures), 4);
  // About bytes / 40 kB/s (the first request's cost may be paid after its ack).
  EXPECT_GE(Clock::now() - start, milliseconds(bytes * 1000 / 40'000 * 6 / 10));
  ASSERT_TRUE((*stream)->Close().ok());
  EXPECT_EQ((*stream)->stats().requests_replayed, 0);
  EXPECT_EQ(ExpectAllRowsStored(*emu_, 1000, 1), 1000);
}

TEST_F(RecoveryTest, RequestOverTheServersMessageLimitFailsWithoutRetry) {
  auto o = EmulatorTestOptions(dir_.path() + "/small");
  o.max_message_bytes = 2000;
  auto emu = StartEmulator(o);
  ASSERT_NE(emu, nullptr);
  auto stream = ZerobusStream::Open(FastOptions(*emu, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto small = EncodeRows(*MakeRows(0, 5));
  auto big = EncodeRows(*MakeRows(5, 500));
  auto f1 = (*stream)->IngestChunk(small, small.chunks[0]);
  ASSERT_TRUE(f1.ok());
  ASSERT_TRUE(f1->result().ok());
  auto f2 = (*stream)->IngestChunk(big, big.chunks[0]);
  ASSERT_TRUE(f2.ok());
  const auto& r = f2->result();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kTransmission);
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ((*stream)->stats().rpcs_opened, 1);
  EXPECT_EQ((*stream)->TakeUnacked().size(), 1u);
}

TEST_F(RecoveryTest, EmulatorRestartIsSurvived) {
  auto o = FastOptions(*emu_, kTable);
  o.recovery_backoff = milliseconds(50);
  o.recovery_backoff_max = milliseconds(200);
  o.recovery_retries = 30;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  Sent first = SendRequests(**stream, 5, 100);
  ASSERT_EQ(WaitAll(first.futures), 5);

  const int grpc_port = emu_->grpc_port(), http_port = emu_->http_port();
  ASSERT_TRUE(emu_->Shutdown().ok());
  emu_.reset();
  // Sent while the server is down: queued, then delivered after the restart.
  Sent second = SendRequests(**stream, 5, 100, 500);
  auto opts = EmulatorTestOptions(dir_.path());
  opts.grpc_port = grpc_port;
  opts.http_port = http_port;
  emu_ = StartEmulator(opts);
  ASSERT_NE(emu_, nullptr);
  std::vector<arrow::Status> errors;
  ASSERT_EQ(WaitAll(second.futures, &errors), 5) << (errors.empty() ? "" : errors[0].ToString());
  ASSERT_TRUE((*stream)->Close().ok());
  EXPECT_GE((*stream)->stats().rpc_failures, 1);
  ExpectAllRowsStored(*emu_, 1000, 2);
}

// A headers provider whose second and later calls wait until released (a token endpoint that
// hangs while the stream is recovering).
class GatedProvider : public HeadersProvider {
 public:
  explicit GatedProvider(std::string token) : token_(std::move(token)) {}
  arrow::Result<Headers> GetHeaders() override {
    std::unique_lock<std::mutex> lk(mu_);
    if (++calls_ >= 2) {
      blocked_ = true;
      cv_.notify_all();
      cv_.wait_for(lk, std::chrono::seconds(20), [&] { return released_; });
    }
    return Headers{{"authorization", "Bearer " + token_}};
  }
  void WaitBlocked() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(10), [&] { return blocked_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::string token_;
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  bool blocked_ = false, released_ = false;
};

TEST_F(RecoveryTest, AbortDoesNotWaitForAHeadersProviderThatHangs) {
  auto provider = std::make_shared<GatedProvider>(
      emu_->tokens().IssueForTesting(kClientId, {kTable}, std::chrono::seconds(60)));
  auto o = FastOptions(*emu_, kTable);
  o.headers_provider = provider;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto rule = Rule();
  rule.withhold_acks = true;
  rule.end_stream = emulator::EndStreamFault{1, 14, "injected: unavailable"};
  emu_->faults().Add(rule);
  Sent sent = SendRequests(**stream, 2, 10);
  provider->WaitBlocked();  // the worker is stuck fetching headers for the reopen
  EXPECT_EQ((*stream)->state(), StreamState::kRecovering);
  const auto start = Clock::now();
  (*stream)->Abort();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  for (auto& f : sent.futures) {
    ASSERT_TRUE(f.is_finished());
    EXPECT_THAT(f.status().message(), ::testing::HasSubstr("aborted by the caller"));
  }
  EXPECT_EQ((*stream)->TakeUnacked().size(), 2u);
  provider->Release();
}

// Futures are finished on the stream's worker only (the documented contract), also when the
// caller ends the stream: a completion callback never runs on the thread calling Abort or Close.
struct CallbackThreads {
  std::mutex mu;
  std::vector<std::thread::id> ids;
  void Watch(std::vector<arrow::Future<IngestAck>>& futures) {
    for (auto& f : futures) {
      f.AddCallback([this](const arrow::Result<IngestAck>&) {
        std::lock_guard<std::mutex> lk(mu);
        ids.push_back(std::this_thread::get_id());
      });
    }
  }
};

TEST_F(RecoveryTest, AbortFinishesFuturesOnTheWorkerThread) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto rule = Rule();
  rule.withhold_acks = true;
  emu_->faults().Add(rule);
  Sent sent = SendRequests(**stream, 3, 10);
  CallbackThreads seen;
  seen.Watch(sent.futures);
  (*stream)->Abort();
  for (auto& f : sent.futures) ASSERT_TRUE(f.is_finished());  // Abort waits for them
  std::lock_guard<std::mutex> lk(seen.mu);
  ASSERT_EQ(seen.ids.size(), 3u);
  for (const auto& id : seen.ids) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_F(RecoveryTest, CloseFinishesFuturesOnTheWorkerThread) {
  auto o = FastOptions(*emu_, kTable);
  o.flush_timeout = milliseconds(300);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto rule = Rule();
  rule.withhold_acks = true;
  emu_->faults().Add(rule);
  Sent sent = SendRequests(**stream, 3, 10);
  CallbackThreads seen;
  seen.Watch(sent.futures);
  EXPECT_FALSE((*stream)->Close().ok());  // the flush inside times out: the requests fail
  for (auto& f : sent.futures) ASSERT_TRUE(f.is_finished());
  std::lock_guard<std::mutex> lk(seen.mu);
  ASSERT_EQ(seen.ids.size(), 3u);
  for (const auto& id : seen.ids) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_F(RecoveryTest, RetryBudgetRunsOutWhenEveryRpcBreaks) {
  auto o = FastOptions(*emu_, kTable);
  o.recovery_retries = 2;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const int64_t failures_before = (*stream)->stats().rpc_failures;
  auto rule = Rule();
  rule.end_stream = emulator::EndStreamFault{0, 14, "injected: always"};
  rule.withhold_acks = true;
  emu_->faults().Add(rule);
  Sent sent = SendRequests(**stream, 3, 10);
  std::vector<arrow::Status> errors;
  EXPECT_EQ(WaitAll(sent.futures, &errors), 0);
  ASSERT_EQ(errors.size(), 3u);
  for (const auto& e : errors) {
    EXPECT_TRUE(IsRetryable(e)) << e.ToString();
    EXPECT_THAT(e.message(), ::testing::HasSubstr("gave up after 3 failed attempts"));
    EXPECT_THAT(e.message(), ::testing::HasSubstr("injected: always"));
  }
  EXPECT_EQ((*stream)->TakeUnacked().size(), 3u);
  EXPECT_EQ((*stream)->stats().rpc_failures - failures_before, 3);
}

}  // namespace
}  // namespace arrow_zerobus::testing
