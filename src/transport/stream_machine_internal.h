// The decisions of ZerobusStream as a pure, event-driven state machine.
//
// Why the split: the stream's hard part is not gRPC but what to do when (which request goes on
// the wire at which offset, what an ack makes durable, when to give up waiting, when to reopen
// and what to replay, which futures fail with what). Inside the reactor those decisions were
// interleaved with threads, a mutex, condition variables and clock reads, so they could only be
// tested through sockets and sleeps. Here they are plain code over plain values: no gRPC types,
// no threads, no locks, no sleeps, and no clock reads (every event carries `now`). Unit tests
// drive it with scripted events and explicit times (tests/transport/stream_machine_test.cc); the
// adapter in stream.cc (the reactor, the worker thread, the headers fetch, the channel) feeds it
// events under its mutex and executes the actions it returns.
//
// Events: DecideAdmit then Admit (a caller's request: admit, wait for room, or refuse), Tick
// (the time is `now`: timers), HeadersFetched (an attempt's headers and channel are ready, or why
// not), OnWireEvent (a parsed server message), OnWriteDone / OnReadEnded / OnFrameFailed (the
// reactor's completions), OnRpcEnded (the RPC's final status, as an RpcEnd), Close (after a
// successful flush), Fail (Abort, a failed flush).
// Actions (StreamActions, run in order after the adapter's lock is released; the token's
// invalidation at once, before a next fetch can start): fetch headers, start an RPC, write a
// request at a wire offset, half-close, cancel with a reason, invalidate the token, log a
// warning; plus the requests whose futures complete (acked) or fail (with `failure`).
// Tick returns when the machine next needs a Tick: every wait with requests on the wire has a
// bound (ack timeout, budget, announced close, open and drain timeouts); it returns nullopt only
// when nothing is in flight or an event is already due (a fetch's result, a cancelled RPC's end).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/status.h>
#include <arrow/util/future.h>

#include "arrow_zerobus/stream.h"
#include "common/retry_policy.h"
#include "transport/wire_event_internal.h"

namespace arrow_zerobus::internal {

using StreamClock = std::chrono::steady_clock;
using StreamTime = StreamClock::time_point;

// An admitted request, until it is acked or failed.
struct StreamRequest {
  int64_t seq = 0;
  bool batch = true;
  int64_t num_records = 0;
  std::shared_ptr<arrow::Buffer> owner;
  std::string_view bytes;
  std::shared_ptr<const FlightPiece> piece;  // kArrow instead of owner/bytes
  int64_t size = 0;        // bytes counted by flow control
  int64_t acked_rows = 0;  // kArrow: rows at the front already durable (cumulative acks)
  int32_t sends = 0;
  RequestLimits limits;
  arrow::Future<IngestAck> future;  // finished by the adapter, never by the machine
};

enum class StreamPhase : int8_t {
  kBackoff,     // no RPC; the next attempt starts at backoff_until
  kConnecting,  // RPC started, waiting for create_stream_response
  kOpen,
  kPaused,      // close signal received
  kClosing,     // half-closed, draining
  kClosed,
  kFailed,
};

// "backoff", "connecting", ... (for logs).
const char* StreamPhaseName(StreamPhase phase);

// What the machine needs of StreamOptions (plus the endpoint, for messages).
struct StreamMachineSettings {
  std::string table_name;
  std::string target;  // the endpoint's host:port
  bool recovery = true;
  int recovery_retries = 0;
  std::chrono::milliseconds recovery_backoff{0};
  std::chrono::milliseconds recovery_backoff_max{0};
  std::chrono::milliseconds recovery_timeout{0};
  std::chrono::milliseconds server_lack_of_ack_timeout{0};
  std::optional<std::chrono::milliseconds> stream_paused_max_wait;
  int64_t max_inflight_requests = 1;
  int64_t max_inflight_bytes = 1;
  FullPolicy when_full = FullPolicy::kBlock;
  std::chrono::milliseconds block_timeout{0};
  StreamTime open_deadline = StreamTime::max();
  // The random draw of each backoff delay, in [0, 1] (unset: random). Tests fix it.
  std::function<double()> jitter;

  static StreamMachineSettings From(const StreamOptions& options, std::string target);
};

// One gRPC operation or side effect for the adapter.
struct StreamAction {
  enum class Kind : int8_t {
    kFetchHeaders,       // fetch the attempt's headers and channel by `budget` (TLS probe first
                         // when `probe_tls`), then report HeadersFetched
    kStartRpc,           // open RPC `rpc` with the fetched headers (its first write: the open
                         // request; report its WriteDone)
    kWrite,              // frame `request` at wire offset `offset` on `rpc`; report WriteDone
    kHalfClose,          // writes-done on `rpc` (its completion needs no report)
    kCancel,             // end `rpc`; its end reports `reason`
    kInvalidateHeaders,  // the token was refused: the next fetch must not reuse it
    kWarn,               // log `text` at warning level
  };
  Kind kind = Kind::kWarn;
  uint64_t rpc = 0;
  OutgoingRequest request;
  int64_t offset = 0;
  arrow::Status reason;
  StreamTime budget = StreamTime::max();
  bool probe_tls = false;
  std::string text;
};

struct StreamActions {
  std::vector<StreamAction> ops;
  std::vector<StreamRequest> completed;  // acked, in seq order
  std::vector<StreamRequest> failed;     // each fails with `failure`
  arrow::Status failure;
  bool empty() const { return ops.empty() && completed.empty() && failed.empty(); }
};

// What a caller admitting a request does now.
struct AdmitDecision {
  enum class Kind : int8_t {
    kAdmit,   // call Admit
    kWait,    // wait for room (an event), at most until `until` (max: no bound), then ask again
    kRefuse,  // return `error`
  };
  Kind kind = Kind::kAdmit;
  StreamTime until = StreamTime::max();
  arrow::Status error;
};

// How an RPC ended, as the adapter read its gRPC status.
struct RpcEnd {
  int code = 0;          // the gRPC status code
  arrow::Status error;   // what the end reports (unless this side cancelled the RPC)
  bool probe_tls = false;  // a plaintext open was closed unanswered: is the server TLS?
};

class StreamMachine {
 public:
  StreamMachine(StreamMachineSettings settings, StreamTime now);

  // ---- admission ----
  // Whether a request of `size` bytes with `limits`, whose caller began at `since`, is admitted
  // at `now`, waits for room (by when_full, block_timeout and the request's deadline) or is
  // refused. `may_block` false: the caller must not wait (a completion callback).
  AdmitDecision DecideAdmit(int64_t size, const RequestLimits& limits, StreamTime since,
                            StreamTime now, bool may_block) const;
  // Why no request can be admitted any more (failed, closed or closing); OK otherwise.
  arrow::Status Refusal() const;
  // Whether a request of `size` bytes fits the in-flight limits now.
  bool HasRoom(int64_t size) const;
  // "3 requests / 1200 bytes in flight (max_inflight_requests=..., max_inflight_bytes=...)".
  std::string InflightText() const;
  // Queues `request` (its seq is assigned and returned) and writes it when the RPC allows.
  int64_t Admit(StreamRequest request, StreamTime now, StreamActions* out);

  // ---- events ----
  // The time is `now`: deadlines that passed act. Returns when to tick next (nullopt: only an
  // event can change anything).
  std::optional<StreamTime> Tick(StreamTime now, StreamActions* out);
  // The result of kFetchHeaders: OK (the adapter has valid headers and a channel) or the error.
  void HeadersFetched(const arrow::Status& status, StreamTime now, StreamActions* out);
  void OnWireEvent(uint64_t rpc, const WireEvent& event, StreamTime now, StreamActions* out);
  // A write (or the open request) on `rpc` completed; `ok` false: no more writes on it.
  void OnWriteDone(uint64_t rpc, bool ok, StreamTime now, StreamActions* out);
  // The read side of `rpc` ended: the call is over, no more writes on it.
  void OnReadEnded(uint64_t rpc);
  // A request could not be framed for `rpc`.
  void OnFrameFailed(uint64_t rpc, const arrow::Status& error, StreamActions* out);
  void OnRpcEnded(uint64_t rpc, const RpcEnd& end, StreamTime now, StreamActions* out);
  // Close() began: no more admissions.
  void BeginClose() { closing_ = true; }
  // Everything admitted was finished (flushed): half-close and drain, or close at once.
  void Close(StreamTime now, StreamActions* out);
  // Final failure: every pending request fails with `status` (no-op once failed or closed).
  void Fail(arrow::Status status, StreamActions* out);

  // ---- state ----
  StreamPhase phase() const { return phase_; }
  StreamState PublicState() const;
  const arrow::Status& final_status() const { return final_status_; }
  StreamStats stats() const;
  int64_t next_seq() const { return next_seq_; }
  uint64_t current_rpc() const { return rpc_ ? rpc_->id : 0; }
  // Whether `rpc` signalled kOpened (false for any RPC but the current one).
  bool RpcCreated(uint64_t rpc) const { return rpc_ && rpc_->id == rpc && rpc_->created; }
  std::vector<UnackedRequest> TakeUnacked() { return std::move(unacked_); }

 private:
  // The current RPC as the machine sees it (dropped when it ends or is detached).
  struct RpcSlot {
    uint64_t id = 0;
    bool created = false;
    bool writing = false;  // a write or writes-done is in flight
    bool write_failed = false;
    bool read_ended = false;
    bool writes_wanted_done = false;
    bool writes_closed = false;
    std::optional<arrow::Status> cancel_reason;
  };

  bool Current(uint64_t rpc) const { return rpc_ && rpc_->id == rpc; }
  int64_t wire_inflight() const { return (next_send_seq_ - rpc_base_seq_) - (rpc_acked_ + 1); }
  void Pump(StreamTime now, StreamActions* out);
  void Cancel(arrow::Status reason, StreamActions* out);
  void CompleteFront(StreamActions* out);
  void OnAckProgress(StreamTime now);
  void ScheduleRetryOrFail(arrow::Status st, StreamTime now, StreamActions* out);
  void StartAttempt(StreamActions* out);
  std::optional<StreamTime> TickOnce(StreamTime now, StreamActions* out);
  StreamTime OperationDeadline() const;
  std::optional<arrow::Status> SendsSpent() const;

  StreamMachineSettings settings_;
  StreamPhase phase_ = StreamPhase::kBackoff;
  bool closing_ = false;
  bool fetching_ = false;  // kFetchHeaders issued, HeadersFetched not yet reported
  arrow::Status final_status_;

  std::deque<StreamRequest> pending_;  // admitted, not acked; seq contiguous from the front
  int64_t next_seq_ = 0;
  int64_t inflight_bytes_ = 0;
  std::vector<UnackedRequest> unacked_;

  std::optional<RpcSlot> rpc_;  // the current RPC (none in kBackoff)
  uint64_t last_rpc_id_ = 0;
  int64_t rpc_base_seq_ = 0;   // seq at wire offset 0 of the current RPC
  int64_t next_send_seq_ = 0;  // next seq to write on the current RPC
  int64_t rpc_acked_ = -1;     // highest acked wire offset on the current RPC
  // Cumulative-row acks (kArrow): rows written on and acked by the current RPC.
  int64_t rpc_rows_sent_ = 0;
  int64_t rpc_rows_acked_ = 0;
  StreamTime last_progress_;
  StreamTime backoff_until_;
  StreamTime attempt_deadline_;
  StreamTime pause_deadline_;
  StreamTime close_deadline_;
  int failed_attempts_ = 0;  // consecutive
  // The policies of the current run of consecutive failures (fresh when a run starts).
  std::unique_ptr<RetryPolicy> recovery_policy_;
  std::unique_ptr<ExponentialBackoffPolicy> recovery_backoff_;
  bool attempt_capped_by_budget_ = false;  // attempt_deadline is the budget's
  bool probe_tls_ = false;  // the last open was closed unanswered: check for a TLS server
  bool auth_retry_used_ = false;
  arrow::Status last_error_;  // of the latest failed attempt
  // Of the first failed attempt in a row: named beside the last when they differ (a last attempt
  // cut short by the budget says less than a refused connection before it).
  arrow::Status first_error_;

  StreamStats stats_;
};

}  // namespace arrow_zerobus::internal
