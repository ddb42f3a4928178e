// The stream's state machine driven by scripted events at explicit times: no sockets, no threads,
// no sleeps. Each test asserts the exact actions (writes with their RPC, offset and payload,
// cancels with their reasons), the futures that complete or fail, and the timers the machine asks
// for. The loopback tests (stream_test, flight_stream_test, recovery_test) cover the same paths
// through gRPC and the emulator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>

#include "arrow_zerobus/errors.h"
#include "transport/flight_wire_internal.h"
#include "transport/stream_machine_internal.h"

namespace arrow_zerobus::internal {
namespace {

using std::chrono::milliseconds;
using Kind = StreamAction::Kind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kCancelled = 1;
constexpr int kUnavailable = 14;
constexpr int kUnauthenticated = 16;

StreamTime T(int64_t ms) { return StreamTime() + milliseconds(ms); }

StreamMachineSettings Settings() {
  StreamMachineSettings s;
  s.table_name = "main.default.t";
  s.target = "localhost:7";
  s.recovery = true;
  s.recovery_retries = 2;
  s.recovery_backoff = milliseconds(100);
  s.recovery_backoff_max = milliseconds(1000);
  s.recovery_timeout = milliseconds(5000);
  s.server_lack_of_ack_timeout = milliseconds(1000);
  s.max_inflight_requests = 10;
  s.max_inflight_bytes = 1000;
  s.block_timeout = milliseconds(2000);
  s.jitter = [] { return 1.0; };  // the full delay: 100, 200, 400 ms ...
  return s;
}

// A request whose payload names it ("r0", "r1", ...) so that writes can be told apart.
StreamRequest Req(const std::string& payload, int64_t size, RequestLimits limits = {}) {
  StreamRequest r;
  r.owner = arrow::Buffer::FromString(payload);
  r.bytes = std::string_view(reinterpret_cast<const char*>(r.owner->data()),
                             static_cast<size_t>(r.owner->size()));
  r.num_records = 1;
  r.size = size;
  r.limits = limits;
  r.future = arrow::Future<IngestAck>::Make();
  return r;
}

// An Arrow piece of `rows` rows (values from `first`).
StreamRequest Piece(int64_t first, int64_t rows) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < rows; ++i) EXPECT_TRUE(b.Append(first + i).ok());
  auto array = b.Finish().ValueOrDie();
  auto piece = std::make_shared<FlightPiece>();
  piece->rows = arrow::RecordBatch::Make(arrow::schema({arrow::field("id", arrow::int64())}), rows,
                                         {array});
  piece->wire_bytes = rows * 8;
  StreamRequest r;
  r.piece = piece;
  r.num_records = rows;
  r.size = piece->wire_bytes;
  r.future = arrow::Future<IngestAck>::Make();
  return r;
}

std::string Describe(const StreamAction& a) {
  switch (a.kind) {
    case Kind::kFetchHeaders:
      return std::string("fetch") + (a.probe_tls ? " probe" : "");
    case Kind::kStartRpc:
      return "start " + std::to_string(a.rpc);
    case Kind::kWrite: {
      std::string what = a.request.piece
                             ? "piece" + std::to_string(a.request.piece->rows->num_rows())
                             : std::string(a.request.bytes);
      if (a.request.skip_rows) what += " skip " + std::to_string(a.request.skip_rows);
      return "write " + std::to_string(a.rpc) + "@" + std::to_string(a.offset) + " " + what;
    }
    case Kind::kHalfClose:
      return "half-close " + std::to_string(a.rpc);
    case Kind::kCancel:
      return "cancel " + std::to_string(a.rpc) + ": " + a.reason.message();
    case Kind::kInvalidateHeaders:
      return "invalidate";
    case Kind::kWarn:
      return "warn";
  }
  return "?";
}

std::vector<std::string> Ops(const StreamActions& acts) {
  std::vector<std::string> out;
  for (const auto& a : acts.ops) out.push_back(Describe(a));
  return out;
}

std::vector<int64_t> Seqs(const std::vector<StreamRequest>& reqs) {
  std::vector<int64_t> out;
  for (const auto& r : reqs) out.push_back(r.seq);
  return out;
}

// A parsed server message.
WireEvent Event(WireEvent::Kind kind, int64_t value = 0, milliseconds close_after = {}) {
  WireEvent ev;
  ev.kind = kind;
  ev.value = value;
  ev.close_after = close_after;
  ev.stream_id = "s";
  return ev;
}
WireEvent Opened() { return Event(WireEvent::Kind::kOpened); }
WireEvent AckOffset(int64_t offset) { return Event(WireEvent::Kind::kAckOffset, offset); }
WireEvent AckRecords(int64_t rows) { return Event(WireEvent::Kind::kAckRecords, rows); }
WireEvent CloseSignal(milliseconds after) {
  return Event(WireEvent::Kind::kCloseSignal, 0, after);
}
RpcEnd Ended(int code, arrow::Status error) { return RpcEnd{code, std::move(error), false}; }
arrow::Status Unavailable(const std::string& what) {
  return MakeError(ErrorKind::kConnection, true, what, kUnavailable);
}

class StreamMachineTest : public ::testing::Test {
 protected:
  void Make(StreamMachineSettings s = Settings()) {
    m = std::make_unique<StreamMachine>(std::move(s), T(0));
  }

  // Ticks at `now` into the next attempt: the headers fetch, then the RPC's start. Returns the
  // RPC's id (0 when the machine did not start one); `acts` is left empty.
  uint64_t StartRpcAt(int64_t now) {
    acts = {};
    m->Tick(T(now), &acts);
    EXPECT_THAT(Ops(acts), ElementsAre("fetch"));
    acts = {};
    m->HeadersFetched(arrow::Status::OK(), T(now), &acts);
    EXPECT_EQ(acts.ops.size(), 1u);
    if (acts.ops.size() != 1 || acts.ops[0].kind != Kind::kStartRpc) return 0;
    const uint64_t rpc = acts.ops[0].rpc;
    EXPECT_EQ(m->phase(), StreamPhase::kConnecting);
    acts = {};
    return rpc;
  }

  // Starts the next RPC at `now` and opens it (open request written, kOpened). Returns the
  // RPC's id; `acts` holds what the open did (the replay, say).
  uint64_t OpenAt(int64_t now) {
    const uint64_t rpc = StartRpcAt(now);
    m->OnWriteDone(rpc, true, T(now), &acts);  // the open request
    m->OnWireEvent(rpc, Opened(), T(now), &acts);
    EXPECT_EQ(m->phase(), StreamPhase::kOpen);
    return rpc;
  }

  // Completes every write the machine starts on `rpc` (gRPC finishing them), collecting them.
  std::vector<std::string> DrainWrites(uint64_t rpc, int64_t now) {
    std::vector<std::string> writes;
    while (true) {
      std::vector<std::string> started;
      for (const auto& a : acts.ops) {
        if (a.kind == Kind::kWrite && a.rpc == rpc) started.push_back(Describe(a));
      }
      writes.insert(writes.end(), started.begin(), started.end());
      if (started.empty()) return writes;
      acts.ops.clear();
      for (size_t i = 0; i < started.size(); ++i) m->OnWriteDone(rpc, true, T(now), &acts);
    }
  }

  std::unique_ptr<StreamMachine> m;
  StreamActions acts;
};

TEST_F(StreamMachineTest, InflightLimitsHoldBackAdmissionUntilAnAckFreesRoom) {
  auto s = Settings();
  s.max_inflight_requests = 2;
  s.max_inflight_bytes = 100;
  Make(s);
  const uint64_t rpc = OpenAt(0);
  EXPECT_TRUE(m->HasRoom(1000));  // an empty stream takes any one request
  m->Admit(Req("r0", 60), T(1), &acts);
  EXPECT_FALSE(m->HasRoom(41));  // bytes: 60 + 41 > 100
  EXPECT_TRUE(m->HasRoom(40));
  m->Admit(Req("r1", 40), T(1), &acts);
  EXPECT_FALSE(m->HasRoom(1));  // requests: 2 of 2
  EXPECT_EQ(m->InflightText(),
            "2 requests / 100 bytes in flight (max_inflight_requests=2, max_inflight_bytes=100)");
  // One write at a time: the second waits for the first's completion.
  EXPECT_THAT(Ops(acts), ElementsAre("write 1@0 r0"));
  acts = {};
  m->OnWriteDone(rpc, true, T(2), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("write 1@1 r1"));
  acts = {};
  m->OnWriteDone(rpc, true, T(2), &acts);
  m->OnWireEvent(rpc, AckOffset(0), T(3), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0));
  EXPECT_TRUE(m->HasRoom(60));
  EXPECT_FALSE(m->HasRoom(61));
  EXPECT_EQ(m->stats().inflight_requests, 1);
  EXPECT_EQ(m->stats().inflight_bytes, 40);
}

TEST_F(StreamMachineTest, AFullStreamWaitsForRoomUntilBlockTimeoutOrTheBudget) {
  using AK = AdmitDecision::Kind;
  auto s = Settings();
  s.max_inflight_requests = 1;
  Make(s);
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(0), &acts);
  // A caller that began at 100 waits until 2100 (block_timeout), asking again on each event.
  AdmitDecision d = m->DecideAdmit(10, {}, T(100), T(100), true);
  EXPECT_EQ(d.kind, AK::kWait);
  EXPECT_EQ(d.until, T(2100));
  d = m->DecideAdmit(10, {}, T(100), T(2100), true);
  EXPECT_EQ(d.kind, AK::kRefuse);
  EXPECT_EQ(d.error.message(),
            "timed out after 2000 ms waiting for room (block_timeout): 1 requests / 10 bytes in "
            "flight (max_inflight_requests=1, max_inflight_bytes=1000)");
  EXPECT_TRUE(IsRetryable(d.error));
  // A shorter budget bounds the wait and is named.
  RequestLimits limits;
  limits.deadline = T(600);
  d = m->DecideAdmit(10, limits, T(100), T(100), true);
  EXPECT_EQ(d.kind, AK::kWait);
  EXPECT_EQ(d.until, T(600));
  d = m->DecideAdmit(10, limits, T(100), T(600), true);
  EXPECT_EQ(d.kind, AK::kRefuse);
  EXPECT_THAT(d.error.message(), HasSubstr("the send's time budget ended waiting for room: 1 "
                                           "requests / 10 bytes in flight"));
  // A completion callback must not block.
  d = m->DecideAdmit(10, {}, T(100), T(100), false);
  EXPECT_EQ(d.kind, AK::kRefuse);
  EXPECT_THAT(d.error.message(), HasSubstr("called from a completion callback"));
  // The ack frees the room.
  DrainWrites(rpc, 0);
  m->OnWireEvent(rpc, AckOffset(0), T(200), &acts);
  EXPECT_EQ(m->DecideAdmit(10, {}, T(100), T(200), true).kind, AK::kAdmit);
}

TEST_F(StreamMachineTest, AFullStreamWithWhenFullRejectRefusesAtOnceAndAClosedOneAlways) {
  using AK = AdmitDecision::Kind;
  auto s = Settings();
  s.max_inflight_requests = 1;
  s.when_full = FullPolicy::kReject;
  Make(s);
  OpenAt(0);
  EXPECT_EQ(m->DecideAdmit(10, {}, T(0), T(0), true).kind, AK::kAdmit);
  m->Admit(Req("r0", 10), T(0), &acts);
  AdmitDecision d = m->DecideAdmit(10, {}, T(0), T(0), true);
  EXPECT_EQ(d.kind, AK::kRefuse);
  EXPECT_EQ(d.error.message(), "stream is full: 1 requests / 10 bytes in flight "
                               "(max_inflight_requests=1, max_inflight_bytes=1000)");
  m->BeginClose();
  d = m->DecideAdmit(1, {}, T(0), T(0), true);
  EXPECT_EQ(d.kind, AK::kRefuse);
  EXPECT_EQ(d.error.message(), "stream to main.default.t is closed");
  EXPECT_FALSE(IsRetryable(d.error));
}

TEST_F(StreamMachineTest, AcksByOffsetCompleteFuturesInOrder) {
  Make();
  const uint64_t rpc = OpenAt(0);
  for (int i = 0; i < 4; ++i) m->Admit(Req("r" + std::to_string(i), 10), T(1), &acts);
  EXPECT_THAT(DrainWrites(rpc, 1),
              ElementsAre("write 1@0 r0", "write 1@1 r1", "write 1@2 r2", "write 1@3 r3"));
  acts = {};
  m->OnWireEvent(rpc, AckOffset(1), T(2), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0, 1));
  EXPECT_EQ(m->Tick(T(2), &acts), T(1002));  // the lack-of-ack bound, from the last progress
  m->OnWireEvent(rpc, AckOffset(1), T(500), &acts);  // a repeat says nothing new...
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0, 1));
  EXPECT_EQ(m->Tick(T(500), &acts), T(1002));  // ...and is no progress
  m->OnWireEvent(rpc, AckOffset(3), T(501), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(Ops(acts), IsEmpty());
  EXPECT_EQ(m->stats().requests_acked, 4);
  EXPECT_EQ(m->stats().bytes_acked, 40);
  // Nothing in flight: no timer.
  EXPECT_FALSE(m->Tick(T(100000), &acts).has_value());
}

TEST_F(StreamMachineTest, AnAckBeyondWhatWasSentIsANonRetryableProtocolError) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  m->Admit(Req("r1", 10), T(1), &acts);  // admitted, not yet written
  acts = {};
  m->OnWireEvent(rpc, AckOffset(1), T(2), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: protocol error from the server: ack for offset 1 "
                                     "but only 1 requests were sent"));
  EXPECT_THAT(acts.completed, IsEmpty());
  acts = {};
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("cancelled")), T(3), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_FALSE(IsRetryable(m->final_status()));
  EXPECT_EQ(m->final_status().message(),
            "protocol error from the server: ack for offset 1 but only 1 requests were sent");
  EXPECT_THAT(Seqs(acts.failed), ElementsAre(0, 1));
  EXPECT_EQ(acts.failure.message(), m->final_status().message());
  // No retry: no fetch, ever.
  acts = {};
  m->Tick(T(100000), &acts);
  EXPECT_THAT(Ops(acts), IsEmpty());
  auto unacked = m->TakeUnacked();
  ASSERT_EQ(unacked.size(), 2u);
  EXPECT_EQ(unacked[0].sends, 1);
  EXPECT_EQ(unacked[1].sends, 0);
}

TEST_F(StreamMachineTest, AckTimeoutCancelsAndStartsRecovery) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(10), &acts);  // the lack-of-ack clock starts at this write
  acts = {};
  EXPECT_EQ(m->Tick(T(500), &acts), T(1010));
  EXPECT_THAT(Ops(acts), IsEmpty());
  EXPECT_EQ(m->Tick(T(1009), &acts), T(1010));
  EXPECT_THAT(Ops(acts), IsEmpty());
  m->Tick(T(1010), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: no ack for 1000 ms with 1 requests in flight "
                                     "(server_lack_of_ack_timeout)"));
  EXPECT_TRUE(IsRetryable(acts.ops[0].reason));
  acts = {};
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(1011), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("warn"));
  EXPECT_THAT(acts.ops[0].text,
              HasSubstr("attempt 1 failed (no ack for 1000 ms with 1 requests in flight "
                        "(server_lack_of_ack_timeout)); next attempt 2 of 3 in 100 ms"));
  EXPECT_EQ(m->PublicState(), StreamState::kRecovering);
  acts = {};
  EXPECT_EQ(m->Tick(T(1100), &acts), T(1111));  // the backoff
  EXPECT_THAT(Ops(acts), IsEmpty());
  const uint64_t rpc2 = OpenAt(1111);
  EXPECT_THAT(DrainWrites(rpc2, 1111), ElementsAre("write 2@0 r0"));
}

TEST_F(StreamMachineTest, RecoveryReplaysExactlyTheUnackedRequestsInOrderWithNewOffsets) {
  Make();
  const uint64_t rpc = OpenAt(0);
  for (int i = 0; i < 4; ++i) m->Admit(Req("r" + std::to_string(i), 10), T(1), &acts);
  DrainWrites(rpc, 1);
  acts = {};
  m->OnWireEvent(rpc, AckOffset(1), T(2), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0, 1));
  acts = {};
  m->OnRpcEnded(rpc, Ended(kUnavailable, Unavailable("connection lost")), T(3), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kBackoff);
  const uint64_t rpc2 = OpenAt(103);
  EXPECT_THAT(DrainWrites(rpc2, 103), ElementsAre("write 2@0 r2", "write 2@1 r3"));
  // Acks of the old RPC are ignored: the replay covers them (on the new RPC, offset 0 would
  // complete r2).
  acts = {};
  m->OnWireEvent(rpc, AckOffset(0), T(104), &acts);
  EXPECT_THAT(acts.completed, IsEmpty());
  EXPECT_THAT(Ops(acts), IsEmpty());
  m->OnWireEvent(rpc2, AckOffset(1), T(104), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(2, 3));
  EXPECT_EQ(acts.completed[0].sends, 2);
  EXPECT_EQ(m->stats().requests_replayed, 2);
  EXPECT_EQ(m->stats().requests_sent, 6);
  EXPECT_EQ(m->stats().rpcs_opened, 2);
  EXPECT_EQ(m->stats().rpc_failures, 1);
}

TEST_F(StreamMachineTest, RecoveryRetriesExhaustedFailEveryPendingFutureWithTheLastCause) {
  Make();  // recovery_retries 2: three attempts
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  m->Admit(Req("r1", 10), T(1), &acts);
  acts = {};
  m->OnRpcEnded(rpc, Ended(kUnavailable, Unavailable("boom 1")), T(10), &acts);
  EXPECT_EQ(m->Tick(T(10), &acts), T(110));
  // Two more opens fail before any ack (the backoff doubles: 100, 200 ms).
  int64_t now = 110;
  for (int attempt = 2; attempt <= 3; ++attempt) {
    const uint64_t r = StartRpcAt(now);
    m->OnRpcEnded(r, Ended(kUnavailable, Unavailable("boom " + std::to_string(attempt))),
                  T(now + 1), &acts);
    if (attempt == 2) {
      EXPECT_THAT(acts.ops[0].text, HasSubstr("next attempt 3 of 3 in 200 ms"));
      now += 1 + 200;
    }
  }
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_THAT(Seqs(acts.failed), ElementsAre(0, 1));
  EXPECT_EQ(acts.failure.message(),
            "stream recovery gave up after 3 failed attempts; last error: boom 3; first "
            "attempt's error: boom 1");
  EXPECT_TRUE(IsRetryable(acts.failure));
  EXPECT_EQ(GetErrorKind(acts.failure), ErrorKind::kConnection);
  EXPECT_EQ(GetZerobusDetail(acts.failure)->grpc_code(), kUnavailable);
  EXPECT_EQ(m->stats().requests_failed, 2);
}

TEST_F(StreamMachineTest, CloseSignalPausesWritesAndRotationReplaysOnANewRpc) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  m->Admit(Req("r1", 10), T(1), &acts);
  DrainWrites(rpc, 1);
  acts = {};
  m->OnWireEvent(rpc, CloseSignal(milliseconds(500)), T(2), &acts);
  EXPECT_EQ(m->PublicState(), StreamState::kPaused);
  m->Admit(Req("r2", 10), T(3), &acts);
  EXPECT_THAT(Ops(acts), IsEmpty());  // paused: nothing new goes on the wire
  // Waits for the in-flight acks, at most until the announced close.
  EXPECT_EQ(m->Tick(T(3), &acts), T(502));
  m->OnWireEvent(rpc, AckOffset(0), T(4), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0));
  acts = {};
  EXPECT_EQ(m->Tick(T(4), &acts), T(502));
  m->Tick(T(502), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: closed after close signal", "fetch"));
  acts = {};
  m->HeadersFetched(arrow::Status::OK(), T(502), &acts);
  const uint64_t rpc2 = acts.ops[0].rpc;
  acts = {};
  m->OnWriteDone(rpc2, true, T(502), &acts);
  m->OnWireEvent(rpc2, Opened(), T(503), &acts);
  EXPECT_THAT(DrainWrites(rpc2, 503), ElementsAre("write 2@0 r1", "write 2@1 r2"));
  // The old RPC's end (our cancel) is not a failure of the stream.
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(504), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kOpen);
  EXPECT_EQ(m->stats().close_signals, 1);
  EXPECT_EQ(m->stats().rpc_failures, 0);
}

TEST_F(StreamMachineTest, TheServerEndingThePausedRpcReopensAtOnce) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  DrainWrites(rpc, 1);
  m->OnWireEvent(rpc, CloseSignal(milliseconds(500)), T(2), &acts);
  acts = {};
  m->OnRpcEnded(rpc, Ended(0, arrow::Status::OK()), T(100), &acts);  // planned: OK
  EXPECT_THAT(Ops(acts), IsEmpty());
  EXPECT_EQ(m->stats().rpc_failures, 0);
  const uint64_t rpc2 = OpenAt(100);
  EXPECT_THAT(DrainWrites(rpc2, 100), ElementsAre("write 2@0 r0"));
}

TEST_F(StreamMachineTest, APausedStreamWithRequestsInFlightStillHasABound) {
  Make();  // no stream_paused_max_wait
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(0), &acts);
  DrainWrites(rpc, 0);
  m->OnWireEvent(rpc, CloseSignal(std::chrono::hours(1)), T(200), &acts);
  acts = {};
  // The server announced an hour; the lack-of-ack bound still holds.
  EXPECT_EQ(m->Tick(T(200), &acts), T(1000));
  m->Tick(T(1000), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: no ack for 1000 ms after a close signal, with 1 "
                                     "requests in flight (server_lack_of_ack_timeout)"));
  // Even while that cancel lands the machine keeps a timer (the announced close).
  EXPECT_TRUE(m->Tick(T(1001), &acts).has_value());
  acts = {};
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(1002), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("warn"));  // a failed attempt, so retries run out
  EXPECT_EQ(m->phase(), StreamPhase::kBackoff);
}

TEST_F(StreamMachineTest, StreamPausedMaxWaitShortensTheAnnouncedClose) {
  auto s = Settings();
  s.stream_paused_max_wait = milliseconds(50);
  Make(s);
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(0), &acts);
  DrainWrites(rpc, 0);
  m->OnWireEvent(rpc, CloseSignal(milliseconds(500)), T(10), &acts);
  acts = {};
  EXPECT_EQ(m->Tick(T(10), &acts), T(60));
  m->Tick(T(60), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: closed after close signal", "fetch"));
}

TEST_F(StreamMachineTest, FlightRecordAcksReplayOnlyTheUnackedSuffixOfAPartlyAckedPiece) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Piece(0, 10), T(1), &acts);
  m->Admit(Piece(10, 5), T(1), &acts);
  EXPECT_THAT(DrainWrites(rpc, 1), ElementsAre("write 1@0 piece10", "write 1@1 piece5"));
  acts = {};
  m->OnWireEvent(rpc, AckRecords(0), T(2), &acts);  // says nothing
  m->OnWireEvent(rpc, AckRecords(4), T(2), &acts);
  EXPECT_THAT(acts.completed, IsEmpty());
  m->OnRpcEnded(rpc, Ended(kUnavailable, Unavailable("lost")), T(3), &acts);
  const uint64_t rpc2 = OpenAt(103);
  EXPECT_THAT(DrainWrites(rpc2, 103),
              ElementsAre("write 2@0 piece10 skip 4", "write 2@1 piece5"));
  EXPECT_EQ(m->stats().records_replayed, 6 + 5);
  // Counts are per RPC: 6 rows finish the first piece, 11 the second.
  m->OnWireEvent(rpc2, AckRecords(6), T(104), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0));
  m->OnWireEvent(rpc2, AckRecords(11), T(104), &acts);
  EXPECT_THAT(Seqs(acts.completed), ElementsAre(0, 1));
}

TEST_F(StreamMachineTest, FlightRecordAckBeyondWhatWasSentEndsTheStream) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Piece(0, 10), T(1), &acts);
  DrainWrites(rpc, 1);
  m->OnWireEvent(rpc, AckRecords(3), T(2), &acts);
  acts = {};
  m->OnWireEvent(rpc, AckRecords(11), T(2), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: protocol error from the server: ack claims 11 "
                                     "records, but only 10 records were sent on this stream"));
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(3), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  // What the caller takes back is the unacked suffix.
  auto unacked = m->TakeUnacked();
  ASSERT_EQ(unacked.size(), 1u);
  EXPECT_EQ(unacked[0].num_records, 7);
  EXPECT_EQ(unacked[0].acked_rows, 3);
  ASSERT_NE(unacked[0].rows, nullptr);
  EXPECT_EQ(unacked[0].rows->num_rows(), 7);
  auto first = std::static_pointer_cast<arrow::Int64Array>(unacked[0].rows->column(0));
  EXPECT_EQ(first->Value(0), 3);
}

TEST_F(StreamMachineTest, MaxSendsReachedFailsTheRequestWithoutAnotherSend) {
  Make();
  const uint64_t rpc = OpenAt(0);
  RequestLimits limits;
  limits.max_sends = 1;
  m->Admit(Req("r0", 10, limits), T(1), &acts);
  DrainWrites(rpc, 1);
  acts = {};
  m->OnRpcEnded(rpc, Ended(kUnavailable, Unavailable("lost")), T(2), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kBackoff);
  acts = {};
  m->Tick(T(102), &acts);
  EXPECT_THAT(Ops(acts), IsEmpty());  // no fetch, no RPC, no write
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_THAT(Seqs(acts.failed), ElementsAre(0));
  EXPECT_EQ(acts.failure.message(),
            "a request of 1 row(s) went on the wire 1 time(s), the most allowed "
            "(max_sends_per_row), and was not acknowledged; last error: lost");
  EXPECT_TRUE(IsRetryable(acts.failure));
  EXPECT_EQ(m->stats().requests_sent, 1);
}

TEST_F(StreamMachineTest, TheSendsBudgetCutsTheAckWaitAndTheRetry) {
  Make();
  const uint64_t rpc = OpenAt(0);
  RequestLimits limits;
  limits.deadline = T(300);
  m->Admit(Req("r0", 10, limits), T(0), &acts);
  DrainWrites(rpc, 0);
  acts = {};
  EXPECT_EQ(m->Tick(T(10), &acts), T(300));  // the budget, before the 1000 ms ack timeout
  m->Tick(T(300), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: no ack before the send's time budget ended, with 1 "
                                     "requests in flight"));
  acts = {};
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(301), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_THAT(Ops(acts), IsEmpty());  // no warning of a next attempt: there is none
  EXPECT_EQ(acts.failure.message(),
            "stream recovery gave up after 1 failed attempts (the send's time budget ends before "
            "the next attempt could start, 100 ms from now); last error: no ack before the send's "
            "time budget ended, with 1 requests in flight");
}

TEST_F(StreamMachineTest, TheOpenDeadlineCapsTheWaitForCreateStreamResponse) {
  auto s = Settings();
  s.open_deadline = T(700);
  Make(s);
  const uint64_t rpc = StartRpcAt(0);
  EXPECT_EQ(m->Tick(T(0), &acts), T(700));  // not recovery_timeout's 5000
  m->Tick(T(700), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: no create_stream_response from localhost:7 "
                                     "before the send's time budget ended"));
  acts = {};
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(701), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_THAT(m->final_status().message(), HasSubstr("the send's time budget ends"));
}

TEST_F(StreamMachineTest, ANonRetryableErrorFailsEverythingWithoutRetry) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  m->Admit(Req("r1", 10), T(1), &acts);
  acts = {};
  const arrow::Status refused =
      MakeError(ErrorKind::kTransmission, false, "table main.default.t does not exist", 5);
  m->OnRpcEnded(rpc, Ended(5, refused), T(2), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_THAT(Ops(acts), IsEmpty());
  EXPECT_THAT(Seqs(acts.failed), ElementsAre(0, 1));
  EXPECT_EQ(acts.failure.message(), "table main.default.t does not exist");
  EXPECT_EQ(m->Refusal().message(), "table main.default.t does not exist");
  acts = {};
  EXPECT_FALSE(m->Tick(T(100000), &acts).has_value());
  EXPECT_THAT(Ops(acts), IsEmpty());
}

TEST_F(StreamMachineTest, ARefusedTokenIsInvalidatedAndRetriedOnceAtOnce) {
  Make();
  uint64_t rpc = StartRpcAt(0);
  const arrow::Status refused = MakeError(ErrorKind::kAuthentication, false, "token refused", 16);
  m->OnRpcEnded(rpc, Ended(kUnauthenticated, refused), T(5), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("invalidate"));
  rpc = StartRpcAt(5);  // no backoff
  m->OnRpcEnded(rpc, Ended(kUnauthenticated, refused), T(6), &acts);  // refused again: final
  EXPECT_THAT(Ops(acts), IsEmpty());
  EXPECT_EQ(m->phase(), StreamPhase::kFailed);
  EXPECT_EQ(m->final_status().message(), "token refused");
}

TEST_F(StreamMachineTest, AHeadersErrorCountsAsAFailedAttempt) {
  Make();
  m->Tick(T(0), &acts);
  acts = {};
  m->HeadersFetched(Unavailable("token endpoint down"), T(0), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("warn"));
  EXPECT_EQ(m->phase(), StreamPhase::kBackoff);
  EXPECT_EQ(m->stats().rpc_failures, 1);
  // A plaintext open closed unanswered asks for a TLS probe before the next attempt.
  const uint64_t rpc = StartRpcAt(100);
  m->OnRpcEnded(rpc, RpcEnd{kUnavailable, Unavailable("socket closed"), true}, T(101), &acts);
  acts = {};
  m->Tick(T(1000), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("fetch probe"));
}

TEST_F(StreamMachineTest, CloseHalfClosesAndTheDrainEnds) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  DrainWrites(rpc, 1);
  m->OnWireEvent(rpc, AckOffset(0), T(2), &acts);
  m->BeginClose();
  EXPECT_EQ(m->Refusal().message(), "stream to main.default.t is closed");
  acts = {};
  m->Close(T(3), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("half-close 1"));
  EXPECT_EQ(m->Tick(T(3), &acts), T(5003));  // recovery_timeout bounds the drain
  m->Tick(T(5003), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("half-close 1", "cancel 1: close drain timed out"));
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(5004), &acts);
  EXPECT_EQ(m->phase(), StreamPhase::kClosed);
  EXPECT_TRUE(m->final_status().ok());
}

TEST_F(StreamMachineTest, FailCancelsTheRpcAndFailsEveryPendingRequestOnce) {
  Make();
  const uint64_t rpc = OpenAt(0);
  m->Admit(Req("r0", 10), T(1), &acts);
  m->Admit(Req("r1", 10), T(1), &acts);
  acts = {};
  m->Fail(MakeError(ErrorKind::kTransmission, false, "aborted by the caller"), &acts);
  EXPECT_THAT(Ops(acts), ElementsAre("cancel 1: aborted by the caller"));
  EXPECT_THAT(Seqs(acts.failed), ElementsAre(0, 1));
  acts = {};
  m->Fail(MakeError(ErrorKind::kTransmission, false, "again"), &acts);  // no-op
  EXPECT_TRUE(acts.empty());
  m->OnRpcEnded(rpc, Ended(kCancelled, arrow::Status::Cancelled("x")), T(2), &acts);
  EXPECT_TRUE(acts.empty());
  EXPECT_EQ(m->final_status().message(), "aborted by the caller");
}

}  // namespace
}  // namespace arrow_zerobus::internal
