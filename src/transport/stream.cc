// ZerobusStream: the logical stream over a sequence of EphemeralStream RPCs.
//
// Threads: gRPC's callback threads run the reactor (reads, write completions) and only update
// state under `mu` and start the next write; the stream's worker thread does everything that
// blocks or waits (opening RPCs with the headers provider, backoff, timeouts, switching RPCs after
// a close signal) and finishes the callers' futures. gRPC operations are never started while
// `mu` is held, because gRPC may run a reaction inline in the calling thread.
//
// Why the callback API and not a completion queue: the callback API needs no polling thread of
// ours for I/O, and completions arrive on gRPC's threads as soon as they happen. The one thing
// that must not run there (blocking work) is handed to the worker thread anyway.

#include "arrow_zerobus/stream.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/client_callback.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/log.h"
#include "common/endpoint.h"
#include "common/http_client.h"
#include "common/retry_policy.h"
#include "transport/channel_internal.h"
#include "transport/flight_wire_internal.h"
#include "transport/protocol_internal.h"
#include "transport/wire_internal.h"

namespace arrow_zerobus {

namespace pb = databricks::zerobus;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string_view StreamStateName(StreamState state) {
  switch (state) {
    case StreamState::kOpen:
      return "open";
    case StreamState::kPaused:
      return "paused";
    case StreamState::kRecovering:
      return "recovering";
    case StreamState::kClosed:
      return "closed";
    case StreamState::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace {

constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcUnauthenticated = 16;

bool IsValidHeaderKey(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string Millis(milliseconds d) { return std::to_string(d.count()) + " ms"; }

bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

// An open that failed because the endpoint speaks another protocol, which no retry heals: the
// cause, for the message (empty when the failure may be transient).
std::string_view ProtocolMismatch(std::string_view grpc_message) {
  if (ContainsNoCase(grpc_message, "http1.x server")) {
    return "the server answers HTTP/1.x: it is not a gRPC server; is the endpoint the Zerobus "
           "gRPC port and not an HTTP port?";
  }
  if (ContainsNoCase(grpc_message, "wrong version number")) {
    return "the server does not speak TLS: use http:// for a plaintext server, or check the port";
  }
  return {};
}

// Stream state changes at debug level (never headers or tokens). The text is formatted only
// when debug records are wanted.
#define AZ_TRACE(...)                                              \
  do {                                                             \
    if (::arrow_zerobus::LogEnabled(::arrow_zerobus::LogSeverity::kDebug)) { \
      char az_trace_buf[512];                                      \
      std::snprintf(az_trace_buf, sizeof(az_trace_buf), __VA_ARGS__); \
      ::arrow_zerobus::Log(::arrow_zerobus::LogSeverity::kDebug,   \
                           std::string("stream: ") + az_trace_buf); \
    }                                                              \
  } while (0)

// now + d without overflow (options may say "practically forever").
Clock::time_point After(Clock::time_point from, milliseconds d) {
  const auto room = std::chrono::duration_cast<milliseconds>(Clock::time_point::max() - from);
  return d >= room ? Clock::time_point::max() : from + d;
}

}  // namespace

arrow::Status StreamOptions::Validate() const {
  ARROW_RETURN_NOT_OK(internal::ParseEndpoint(endpoint, "endpoint").status());
  {
    int parts = 1;
    bool empty_part = table_name.empty() || table_name.front() == '.' || table_name.back() == '.';
    for (size_t i = 0; i < table_name.size(); ++i) {
      if (table_name[i] == '.') {
        ++parts;
        if (i + 1 < table_name.size() && table_name[i + 1] == '.') empty_part = true;
      }
    }
    if (parts != 3 || empty_part || !IsPrintableAscii(table_name) ||
        table_name.find(' ') != std::string::npos) {
      return ConfigurationError("table_name '" + table_name +
                                "' must be a three-part name catalog.schema.table");
    }
  }
  if (record_type != RecordType::kProto && record_type != RecordType::kJson &&
      record_type != RecordType::kArrow) {
    return ConfigurationError("record_type must be kProto, kJson or kArrow");
  }
  if (record_type == RecordType::kArrow) {
    if (!arrow_schema || arrow_schema->num_fields() == 0) {
      return ConfigurationError("arrow_schema with at least one field is required for "
                                "record_type kArrow");
    }
    auto nested = internal::CheckFlightSchema(*arrow_schema);
    if (!nested.ok()) return ConfigurationError("arrow_schema: " + nested.message());
    if (flight_piece_bytes < 1) {
      return ConfigurationError("flight_piece_bytes must be at least 1, got " +
                                std::to_string(flight_piece_bytes));
    }
    ARROW_RETURN_NOT_OK(internal::FlightIpcOptions(ipc_compression).status());
  }
  if (record_type == RecordType::kProto && !descriptor.has_value()) {
    return ConfigurationError("descriptor is required for record_type kProto");
  }
  if (record_type == RecordType::kProto && descriptor->field_size() == 0) {
    return ConfigurationError("descriptor '" + descriptor->name() + "' has no fields");
  }
  if (!headers_provider) {
    return ConfigurationError(
        "headers_provider is required (MakeOAuthHeadersProvider or MakeStaticHeadersProvider)");
  }
  if (!IsPrintableAscii(application_name)) {
    return ConfigurationError("application_name must be printable ASCII");
  }
  if (max_inflight_requests < 1) {
    return ConfigurationError("max_inflight_requests must be at least 1, got " +
                              std::to_string(max_inflight_requests));
  }
  if (max_inflight_bytes < 1) {
    return ConfigurationError("max_inflight_bytes must be at least 1, got " +
                              std::to_string(max_inflight_bytes));
  }
  auto positive = [](milliseconds v, const char* name) -> arrow::Status {
    if (v.count() <= 0) {
      return ConfigurationError(std::string(name) + " must be positive, got " + Millis(v));
    }
    return arrow::Status::OK();
  };
  ARROW_RETURN_NOT_OK(positive(block_timeout, "block_timeout"));
  ARROW_RETURN_NOT_OK(positive(recovery_timeout, "recovery_timeout"));
  ARROW_RETURN_NOT_OK(positive(server_lack_of_ack_timeout, "server_lack_of_ack_timeout"));
  ARROW_RETURN_NOT_OK(positive(flush_timeout, "flush_timeout"));
  if (recovery_backoff.count() < 0) {
    return ConfigurationError("recovery_backoff must not be negative, got " +
                              Millis(recovery_backoff));
  }
  if (recovery_backoff_max < recovery_backoff) {
    return ConfigurationError("recovery_backoff_max (" + Millis(recovery_backoff_max) +
                              ") must be at least recovery_backoff (" + Millis(recovery_backoff) +
                              ")");
  }
  if (recovery_retries < 0) {
    return ConfigurationError("recovery_retries must not be negative, got " +
                              std::to_string(recovery_retries));
  }
  if (stream_paused_max_wait && stream_paused_max_wait->count() < 0) {
    return ConfigurationError("stream_paused_max_wait must not be negative");
  }
  return arrow::Status::OK();
}

namespace internal {
class Rpc;
}

namespace {

// Worker threads left running by a stream destroyed from one of its own completion callbacks
// (each ends once that callback returns and it has finished the futures it holds). They are
// joined at the latest when the process exits: a worker still finishing futures then would run
// Arrow's future callbacks against static objects already destroyed. Created on first use, so
// after Arrow's and gRPC's statics, and destroyed before them.
class DetachedWorkers {
 public:
  static DetachedWorkers& Get() {
    static DetachedWorkers workers;
    return workers;
  }
  void Adopt(std::thread worker, std::shared_ptr<std::atomic<bool>> ended) {
    std::lock_guard<std::mutex> lk(mu_);
    // Join those that have ended, so a long-lived process keeps a short list.
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->ended->load()) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    workers_.push_back({std::move(worker), std::move(ended)});
  }
  ~DetachedWorkers() {
    std::list<Entry> workers;
    {
      std::lock_guard<std::mutex> lk(mu_);
      workers.swap(workers_);
    }
    for (auto& w : workers) {
      if (w.thread.get_id() == std::this_thread::get_id()) {
        w.thread.detach();  // the process exits from a completion callback
      } else {
        w.thread.join();
      }
    }
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended;  // set when the thread's function returns
  };
  std::mutex mu_;
  std::list<Entry> workers_;
};

struct Request {
  int64_t seq = 0;
  bool batch = true;
  int64_t num_records = 0;
  std::shared_ptr<arrow::Buffer> owner;
  std::string_view bytes;
  std::shared_ptr<const internal::FlightPiece> piece;  // kArrow instead of owner/bytes
  int64_t size = 0;        // bytes counted by flow control
  int64_t acked_rows = 0;  // kArrow: rows at the front already durable (cumulative acks)
  int32_t sends = 0;
  RequestLimits limits;
  arrow::Future<IngestAck> future;
};

// gRPC operations decided under the lock and started after it is released.
struct RpcOps {
  std::shared_ptr<internal::Rpc> rpc;
  bool write = false;
  // The ingest request to write (offset on this RPC).
  internal::OutgoingRequest write_request;
  int64_t write_offset = 0;
  bool writes_done = false;
  bool cancel = false;
  bool remove_hold = false;
  bool any() const { return write || writes_done || cancel || remove_hold; }
};

enum class Phase : int8_t {
  kBackoff,     // no RPC; the next attempt starts at backoff_until
  kConnecting,  // RPC started, waiting for create_stream_response
  kOpen,
  kPaused,      // close signal received
  kClosing,     // half-closed, draining
  kClosed,
  kFailed,
};

}  // namespace

namespace internal {

// One EphemeralStream RPC. Lives until OnDone (self-owned); fields marked (mu) are guarded by the
// core's mutex.
class Rpc : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Rpc(std::shared_ptr<ZerobusStream::Core> core, std::shared_ptr<grpc::Channel> channel)
      : core_(std::move(core)), channel_(std::move(channel)) {}

  // Starts the call with `headers`, the create_stream request as its first write.
  void Start(const Headers& headers, grpc::ByteBuffer create_request);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  void Execute(RpcOps& ops);

  grpc::ClientContext ctx;
  std::shared_ptr<Rpc> self;  // released at the end of OnDone

  // (mu)
  bool created = false;
  bool writing = false;  // a write or writes-done is in flight
  bool writes_wanted_done = false;
  bool writes_closed = false;
  bool write_failed = false;
  bool dead = false;  // the read side ended: the call is over
  bool hold_released = false;
  bool done = false;
  grpc::Status status;
  // Set when this side ended the RPC: the error to report instead of CANCELLED.
  std::optional<arrow::Status> cancel_reason;

 private:
  std::shared_ptr<ZerobusStream::Core> core_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ByteBuffer write_buf_;
  grpc::ByteBuffer read_buf_;
};

}  // namespace internal

struct ZerobusStream::Core : std::enable_shared_from_this<ZerobusStream::Core> {
  using Rpc = internal::Rpc;

  StreamOptions options;
  std::unique_ptr<internal::WireProtocol> protocol;
  // kArrow: the schema on the wire (dictionaries decoded) and the IPC options of the pieces.
  std::shared_ptr<arrow::Schema> flight_schema;
  arrow::ipc::IpcWriteOptions flight_ipc;
  internal::ChannelSettings channel_settings;
  std::string ca_pem;

  mutable std::mutex mu;
  std::condition_variable worker_cv;  // the worker waits here
  std::condition_variable state_cv;   // callers wait here (room, flush, open, close)

  Phase phase = Phase::kBackoff;
  bool attempt_running = false;  // the opener thread is fetching an attempt's headers
  std::thread opener;            // runs FetchHeaders
  std::optional<arrow::Result<Headers>> fetched_headers;  // its result, for the worker
  arrow::Result<std::shared_ptr<grpc::Channel>> fetched_channel;
  bool closing = false;          // Close() began: no more admissions
  bool stop = false;             // the worker exits
  arrow::Status final_status;

  std::deque<Request> pending;  // admitted, not acked; seq contiguous from pending.front()
  int64_t next_seq = 0;
  int64_t inflight_bytes = 0;
  int64_t finished_through = -1;  // every future with seq <= this has been finished
  int delivering = 0;             // Deliver calls finishing futures right now
  std::vector<Request> to_complete;
  std::vector<Request> to_fail;
  std::vector<UnackedRequest> unacked;

  std::shared_ptr<Rpc> rpc;  // the current RPC (null in kBackoff)
  int64_t rpc_base_seq = 0;   // seq at wire offset 0 of the current RPC
  int64_t next_send_seq = 0;  // next seq to write on the current RPC
  int64_t rpc_acked = -1;     // highest acked wire offset on the current RPC
  // Cumulative-row acks (kArrow): rows written on and acked by the current RPC.
  int64_t rpc_rows_sent = 0;
  int64_t rpc_rows_acked = 0;
  Clock::time_point last_progress;
  Clock::time_point backoff_until;
  Clock::time_point attempt_deadline;
  Clock::time_point pause_deadline;
  Clock::time_point close_deadline;
  int failed_attempts = 0;   // consecutive
  // The policies of the current run of consecutive failures (fresh clones when a run starts).
  std::unique_ptr<internal::RetryPolicy> recovery_policy;
  std::unique_ptr<internal::ExponentialBackoffPolicy> recovery_backoff;
  bool attempt_capped_by_budget = false;  // attempt_deadline is the budget's, not recovery_timeout
  bool probe_tls = false;  // the last open was closed unanswered: check for a TLS server
  bool auth_retry_used = false;
  arrow::Status last_error;  // of the latest failed attempt
  int live_rpcs = 0;

  StreamStats stats;
  std::thread worker;
  std::shared_ptr<std::atomic<bool>> worker_ended = std::make_shared<std::atomic<bool>>(false);
  std::thread::id worker_id;

  bool on_worker() const { return std::this_thread::get_id() == worker_id; }
  bool AllFinished() const { return finished_through >= next_seq - 1 && delivering == 0; }
  int64_t wire_inflight() const { return (next_send_seq - rpc_base_seq) - (rpc_acked + 1); }

  // ---- under mu ----------------------------------------------------------------------------

  // Next gRPC operation for `r`: an ingest write, writes-done, or releasing the hold.
  void Pump(const std::shared_ptr<Rpc>& r, RpcOps* ops) {
    ops->rpc = r;
    if (!r->writing && !r->dead && !r->write_failed && !r->writes_closed) {
      const bool current = (r == rpc);
      if (current && r->created && phase == Phase::kOpen && next_send_seq < next_seq) {
        Request& req = pending[next_send_seq - pending.front().seq];
        if (wire_inflight() == 0) {
          // The lack-of-ack clock starts now: the worker must learn its deadline.
          last_progress = Clock::now();
          worker_cv.notify_all();
        }
        ops->write = true;
        ops->write_request = internal::OutgoingRequest{req.batch, req.owner, req.bytes, req.piece,
                                                       req.acked_rows};
        ops->write_offset = next_send_seq - rpc_base_seq;
        if (req.sends > 0) {
          ++stats.requests_replayed;
          stats.records_replayed += req.num_records - req.acked_rows;
        }
        rpc_rows_sent += req.num_records - req.acked_rows;
        ++req.sends;
        ++stats.requests_sent;
        stats.bytes_sent += req.size;
        ++next_send_seq;
        r->writing = true;
        return;
      }
      if (r->writes_wanted_done) {
        r->writing = true;
        r->writes_closed = true;
        ops->writes_done = true;
        return;
      }
    }
    MaybeReleaseHold(r, ops);
  }

  void MaybeReleaseHold(const std::shared_ptr<Rpc>& r, RpcOps* ops) {
    if (!r->hold_released && !r->writing && (r->dead || r->write_failed || r->writes_closed)) {
      AZ_TRACE("release hold");
      r->hold_released = true;
      ops->rpc = r;
      ops->remove_hold = true;
    }
  }

  // Ends `r` from this side; `reason` is what its end reports.
  void CancelRpc(const std::shared_ptr<Rpc>& r, arrow::Status reason, RpcOps* ops) {
    if (!r || r->done) return;
    AZ_TRACE("cancel rpc: %s", reason.ToString().c_str());
    if (!r->cancel_reason) r->cancel_reason = std::move(reason);
    ops->rpc = r;
    ops->cancel = true;
  }

  // Final failure: every pending request fails with `status` and can be taken back.
  void Fail(arrow::Status status, RpcOps* ops) {
    if (phase == Phase::kFailed || phase == Phase::kClosed) return;
    phase = Phase::kFailed;
    final_status = std::move(status);
    for (auto& req : pending) {
      UnackedRequest u;
      u.seq = req.seq;
      u.batch = req.batch;
      u.num_records = req.num_records - req.acked_rows;
      u.owner = req.owner;
      u.bytes = req.bytes;
      u.sends = req.sends;
      if (req.piece) {
        u.rows = req.piece->rows->Slice(req.acked_rows);
        u.acked_rows = req.acked_rows;
      }
      unacked.push_back(std::move(u));
      ++stats.requests_failed;
      to_fail.push_back(std::move(req));
    }
    pending.clear();
    inflight_bytes = 0;
    if (rpc) {
      CancelRpc(rpc, final_status, ops);
      rpc.reset();
    }
    worker_cv.notify_all();
    state_cv.notify_all();
  }

  arrow::Status ProtocolError(std::string what) { return internal::ProtocolError(std::move(what)); }

  void OnEvent(const std::shared_ptr<Rpc>& r, const internal::WireEvent& ev, RpcOps* ops) {
    using Kind = internal::WireEvent::Kind;
    if (r != rpc) return;  // a detached RPC: its acks are covered by the replay
    switch (ev.kind) {
      case Kind::kError:
        CancelRpc(r, ev.error, ops);
        return;
      case Kind::kOpened: {
        if (r->created) return;
        r->created = true;
        stats.stream_id = ev.stream_id;
        ++stats.rpcs_opened;
        if (phase != Phase::kConnecting) return;
        phase = Phase::kOpen;
        rpc_base_seq = pending.empty() ? next_seq : pending.front().seq;
        next_send_seq = rpc_base_seq;
        rpc_acked = -1;
        rpc_rows_sent = 0;
        rpc_rows_acked = 0;
        last_progress = Clock::now();
        if (pending.empty()) {
          // Nothing to prove by an ack: the open itself is progress.
          failed_attempts = 0;
          auth_retry_used = false;
        }
        state_cv.notify_all();
        worker_cv.notify_all();
        Pump(r, ops);
        return;
      }
      case Kind::kAckOffset: {
        if (!r->created) {
          CancelRpc(r, ProtocolError("ack before create_stream_response"), ops);
          return;
        }
        const int64_t w = ev.value;
        const int64_t sent = next_send_seq - rpc_base_seq;
        if (w < rpc_acked) {
          CancelRpc(r,
                    ProtocolError("ack went backwards from offset " + std::to_string(rpc_acked) +
                                  " to " + std::to_string(w)),
                    ops);
          return;
        }
        if (w >= sent) {
          CancelRpc(r,
                    ProtocolError("ack for offset " + std::to_string(w) + " but only " +
                                  std::to_string(sent) + " requests were sent"),
                    ops);
          return;
        }
        if (w == rpc_acked) return;
        AZ_TRACE("ack %lld (base %lld)", static_cast<long long>(w),
                 static_cast<long long>(rpc_base_seq));
        const int64_t durable = rpc_base_seq + w;
        while (!pending.empty() && pending.front().seq <= durable) CompleteFront();
        OnAckProgress();
        return;
      }
      case Kind::kAckRecords: {
        // Cumulative rows of this RPC: a request is durable once the count covers its last row.
        // Lower or equal counts (0 included) say nothing new; more than was sent is a lie that
        // would corrupt what recovery replays, so it ends the stream.
        const int64_t n = ev.value;
        if (n > rpc_rows_sent) {
          CancelRpc(r,
                    ProtocolError("ack claims " + std::to_string(n) + " records, but only " +
                                  std::to_string(rpc_rows_sent) +
                                  " records were sent on this stream"),
                    ops);
          return;
        }
        if (n <= rpc_rows_acked) return;
        AZ_TRACE("ack %lld records (base %lld)", static_cast<long long>(n),
                 static_cast<long long>(rpc_base_seq));
        int64_t fresh = n - rpc_rows_acked;
        rpc_rows_acked = n;
        while (fresh > 0 && !pending.empty() && pending.front().seq < next_send_seq) {
          Request& req = pending.front();
          const int64_t left = req.num_records - req.acked_rows;
          if (fresh < left) {
            req.acked_rows += fresh;  // partly durable: a replay sends only the rest
            break;
          }
          fresh -= left;
          CompleteFront();
        }
        OnAckProgress();
        return;
      }
      case Kind::kCloseSignal: {
        ++stats.close_signals;
        if (phase != Phase::kOpen || !options.recovery) return;
        milliseconds wait = std::max(ev.close_after, milliseconds(0));
        if (options.stream_paused_max_wait) wait = std::min(wait, *options.stream_paused_max_wait);
        phase = Phase::kPaused;
        pause_deadline = After(Clock::now(), wait);
        worker_cv.notify_all();
        state_cv.notify_all();
        return;
      }
    }
  }

  // The oldest pending request is durable.
  void CompleteFront() {
    Request& req = pending.front();
    rpc_acked = req.seq - rpc_base_seq;
    inflight_bytes -= req.size;
    ++stats.requests_acked;
    stats.records_acked += req.num_records;
    stats.bytes_acked += req.size;
    to_complete.push_back(std::move(req));
    pending.pop_front();
  }

  void OnAckProgress() {
    last_progress = Clock::now();
    failed_attempts = 0;
    auth_retry_used = false;
    worker_cv.notify_all();
    state_cv.notify_all();
  }

  // The error an ended RPC reports.
  arrow::Status RpcEndStatus(const Rpc& r) {
    if (r.cancel_reason) return *r.cancel_reason;
    if (auto known = protocol->EndStatus(r.status)) return *known;
    const int code = static_cast<int>(r.status.error_code());
    const std::string& message = r.status.error_message();
    if (code == 0) {
      return MakeError(ErrorKind::kTransmission, true,
                       "stream to " + options.table_name +
                           " ended by the server (OK) with requests unacked");
    }
    if (!r.created && code == kGrpcUnavailable) {
      // Could not connect (refused, DNS, TLS, another protocol): say so.
      const std::string_view mismatch = ProtocolMismatch(message);
      if (!mismatch.empty()) {
        return MakeError(ErrorKind::kConnection, false,
                         "cannot open stream to " + channel_settings.endpoint.target() + ": " +
                             message + " (" + std::string(mismatch) + ")",
                         code);
      }
      // A TLS server closes a plaintext connection without a word: the next attempt checks
      // whether the endpoint speaks TLS.
      if (!channel_settings.endpoint.tls && (ContainsNoCase(message, "socket closed") ||
                                             ContainsNoCase(message, "connection reset"))) {
        probe_tls = true;
      }
      const bool tls = ContainsNoCase(message, "handshake") || ContainsNoCase(message, "ssl") ||
                       ContainsNoCase(message, "certificate");
      std::string text = "cannot open stream to " + channel_settings.endpoint.target() + ": " +
                         std::string(GrpcCodeName(code)) + ": " + message;
      if (tls) {
        text += " (TLS verification failed: check ca_file and the endpoint's certificate)";
      }
      // A certificate that does not verify will not verify next time either.
      return MakeError(ErrorKind::kConnection, !tls, std::move(text), code,
                       ParseServerErrorCode(message));
    }
    return FromGrpcStatus(code, message, "stream to " + options.table_name);
  }

  void OnRpcEnded(RpcOps* ops) {
    std::shared_ptr<Rpc> r = std::move(rpc);
    rpc.reset();
    AZ_TRACE("rpc ended: phase=%d code=%d msg=%s cancel_reason=%s", static_cast<int>(phase),
             static_cast<int>(r->status.error_code()), r->status.error_message().c_str(),
             r->cancel_reason ? r->cancel_reason->ToString().c_str() : "-");
    if (phase == Phase::kClosing) {
      // Everything was acked before the half-close; how the drain ends does not matter.
      phase = Phase::kClosed;
      state_cv.notify_all();
      return;
    }
    const bool planned = (phase == Phase::kPaused && r->status.ok() && !r->cancel_reason);
    arrow::Status st = RpcEndStatus(*r);
    const int code = static_cast<int>(r->status.error_code());
    if (!planned) ++stats.rpc_failures;
    if (planned) {
      // The server ended the stream it announced: reopen at once and replay.
      phase = Phase::kBackoff;
      backoff_until = Clock::now();
      return;
    }
    last_error = st;
    // A refused token: drop it, fetch a fresh one and reopen once (protocol doc section 3).
    if (!r->cancel_reason && (code == kGrpcUnauthenticated || code == kGrpcPermissionDenied) &&
        !auth_retry_used) {
      auth_retry_used = true;
      options.headers_provider->Invalidate();
      phase = Phase::kBackoff;
      backoff_until = Clock::now();
      return;
    }
    ScheduleRetryOrFail(std::move(st), ops);
  }

  void ScheduleRetryOrFail(arrow::Status st, RpcOps* ops) {
    if (!IsRetryable(st) || !options.recovery) {
      Fail(std::move(st), ops);
      return;
    }
    ++failed_attempts;
    if (failed_attempts == 1 || !recovery_policy) {
      recovery_policy = std::make_unique<internal::LimitedErrorCountRetryPolicy>(
          options.recovery_retries);
      recovery_backoff = std::make_unique<internal::ExponentialBackoffPolicy>(
          options.recovery_backoff, options.recovery_backoff_max, 2.0, 0.5);
    }
    const auto* detail = GetZerobusDetail(st);
    auto give_up = [&](const std::string& why) {
      Fail(MakeError(GetErrorKind(st), true,
                     "stream recovery gave up after " + std::to_string(failed_attempts) +
                         " failed attempts" + why + "; last error: " + st.message(),
                     detail ? detail->grpc_code() : std::nullopt,
                     detail ? detail->server_code() : std::nullopt),
           ops);
    };
    if (!recovery_policy->OnFailure(st)) return give_up("");
    const milliseconds delay = recovery_backoff->OnCompletion();
    const internal::Deadline budget(OperationDeadline());
    if (!budget.Allows(delay)) {
      return give_up(" (the send's time budget ends before the next attempt could start, " +
                     Millis(delay) + " from now)");
    }
    // A failed attempt is shown by default (warning): a person waiting sees what happens.
    if (LogEnabled(LogSeverity::kWarning)) {
      Log(LogSeverity::kWarning, "stream to " + options.table_name + ": attempt " +
                                  std::to_string(failed_attempts) + " failed (" + st.message() +
                                  "); next attempt " + std::to_string(failed_attempts + 1) +
                                  " of " + std::to_string(options.recovery_retries + 1) + " in " +
                                  Millis(delay));
    }
    phase = Phase::kBackoff;
    backoff_until = Clock::now() + delay;
    state_cv.notify_all();
  }

  // The budget recovery draws from: Open's while no RPC has opened yet, then the oldest
  // unacknowledged request's (acks are cumulative: nothing behind it is acked before it).
  Clock::time_point OperationDeadline() const {
    Clock::time_point d = stats.rpcs_opened == 0 ? options.open_deadline : Clock::time_point::max();
    if (!pending.empty()) d = std::min(d, pending.front().limits.deadline);
    return d;
  }

  // A request that already went on the wire as often as its sender allows: the stream fails
  // rather than send it again (retryable, so that the rest can go elsewhere).
  std::optional<arrow::Status> SendsSpent() const {
    for (const auto& req : pending) {
      if (req.limits.max_sends > 0 && req.sends >= req.limits.max_sends) {
        return MakeError(ErrorKind::kTransmission, true,
                         "a request of " + std::to_string(req.num_records) +
                             " row(s) went on the wire " + std::to_string(req.sends) +
                             " time(s), the most allowed (max_sends_per_row), and was not "
                             "acknowledged" +
                             (last_error.ok() ? "" : "; last error: " + last_error.message()));
      }
    }
    return std::nullopt;
  }

  StreamState PublicState() const {
    switch (phase) {
      case Phase::kBackoff:
      case Phase::kConnecting:
        return StreamState::kRecovering;
      case Phase::kOpen:
      case Phase::kClosing:
        return StreamState::kOpen;
      case Phase::kPaused:
        return StreamState::kPaused;
      case Phase::kClosed:
        return StreamState::kClosed;
      case Phase::kFailed:
        return StreamState::kFailed;
    }
    return StreamState::kFailed;
  }

  // ---- worker --------------------------------------------------------------------------------

  // Finishes the futures of acked and failed requests, outside the lock. Runs on the worker
  // only, so completion callbacks always run there (the worker never blocks on a token fetch:
  // that runs on the opener thread).
  void Deliver(std::unique_lock<std::mutex>& lk) {
    if (to_complete.empty() && to_fail.empty()) return;
    std::vector<Request> done = std::move(to_complete);
    std::vector<Request> failed = std::move(to_fail);
    to_complete.clear();
    to_fail.clear();
    const arrow::Status status = final_status;
    ++delivering;
    lk.unlock();
    int64_t last = -1;
    for (auto& req : done) {
      last = req.seq;
      IngestAck ack{req.seq, req.num_records, req.size, req.sends};
      req.owner.reset();
      req.piece.reset();
      req.future.MarkFinished(ack);
    }
    for (auto& req : failed) {
      last = std::max(last, req.seq);
      req.owner.reset();
      req.piece.reset();
      req.future.MarkFinished(status);
    }
    done.clear();
    failed.clear();
    lk.lock();
    --delivering;
    if (last > finished_through) finished_through = last;
    state_cv.notify_all();
  }

  void StartAttempt(std::unique_lock<std::mutex>& lk) {
    AZ_TRACE("start attempt (failed_attempts=%d)", failed_attempts);
    if (auto spent = SendsSpent()) {
      RpcOps ops;
      Fail(std::move(*spent), &ops);
      lk.unlock();
      Execute(ops);
      lk.lock();
      return;
    }
    attempt_running = true;
    const Clock::time_point budget = OperationDeadline();
    const bool probe = std::exchange(probe_tls, false);
    // The headers provider may block (a token endpoint): it runs on the opener thread, so that
    // this worker stays free to finish futures (Abort, Close) meanwhile. The previous opener
    // has finished already (its result was taken).
    std::thread previous = std::move(opener);
    lk.unlock();
    if (previous.joinable()) previous.join();
    auto self = shared_from_this();
    std::thread next([self, budget, probe] { self->FetchHeaders(budget, probe); });
    lk.lock();
    opener = std::move(next);
  }

  // On the opener thread: the attempt's headers and channel, handed to the worker.
  void FetchHeaders(Clock::time_point budget, bool probe_tls_first) {
    if (probe_tls_first && internal::SpeaksTls(channel_settings.endpoint.target(),
                                               internal::Deadline(budget).Cap(milliseconds(2000)))) {
      std::lock_guard<std::mutex> lk(mu);
      fetched_headers = arrow::Result<Headers>(MakeError(
          ErrorKind::kConnection, false,
          "cannot open stream to " + channel_settings.endpoint.target() +
              ": the server speaks TLS but the endpoint is plaintext http://: use https://"));
      attempt_running = false;
      worker_cv.notify_all();
      return;
    }
    auto headers = options.headers_provider->GetHeaders(budget);
    arrow::Result<std::shared_ptr<grpc::Channel>> channel;
    if (headers.ok()) channel = internal::MakeChannel(channel_settings, ca_pem);
    std::lock_guard<std::mutex> lk(mu);
    fetched_headers = std::move(headers);
    fetched_channel = std::move(channel);
    attempt_running = false;
    worker_cv.notify_all();
  }

  // On the worker, once FetchHeaders is done: starts the RPC (or schedules the next attempt).
  void ContinueAttempt(std::unique_lock<std::mutex>& lk) {
    arrow::Result<Headers> headers = std::move(*fetched_headers);
    arrow::Result<std::shared_ptr<grpc::Channel>> channel = std::move(fetched_channel);
    fetched_headers.reset();
    if (phase != Phase::kBackoff) return;  // failed or aborted meanwhile
    const Clock::time_point budget = OperationDeadline();
    RpcOps ops;
    arrow::Status st = headers.ok() ? channel.status() : headers.status();
    if (st.ok()) {
      for (const auto& [key, value] : *headers) {
        if (!IsValidHeaderKey(key)) {
          st = ConfigurationError("headers_provider gave an invalid header name '" + key +
                                  "' (lower-case letters, digits, '-', '_', '.')");
          break;
        }
        if (!IsPrintableAscii(value)) {
          // The value may be a secret: name only the header.
          st = ConfigurationError("headers_provider gave a non-printable value for header '" +
                                  key + "'");
          break;
        }
      }
    }
    if (!st.ok()) {
      ++stats.rpc_failures;
      last_error = st;
      ScheduleRetryOrFail(st, &ops);
      lk.unlock();
      Execute(ops);
      lk.lock();
      return;
    }
    auto r = std::make_shared<Rpc>(shared_from_this(), *channel);
    r->self = r;
    r->writing = true;  // the create_stream request
    rpc = r;
    ++live_rpcs;
    phase = Phase::kConnecting;
    attempt_deadline = After(Clock::now(), options.recovery_timeout);
    attempt_capped_by_budget = budget < attempt_deadline;
    if (attempt_capped_by_budget) attempt_deadline = budget;
    Headers h;
    for (auto& kv : *headers) {
      if (kv.first == "x-databricks-zerobus-table-name" || kv.first == "user-agent") continue;
      h.push_back(std::move(kv));
    }
    h.emplace_back("x-databricks-zerobus-table-name", options.table_name);
    grpc::ByteBuffer create = protocol->OpenRequest();
    lk.unlock();
    r->Start(h, std::move(create));
    lk.lock();
  }

  void Run() {
    std::unique_lock<std::mutex> lk(mu);
    while (true) {
      if (!to_complete.empty() || !to_fail.empty()) {
        Deliver(lk);
        continue;
      }
      if (stop) break;
      const auto now = Clock::now();
      const Phase before = phase;
      std::optional<Clock::time_point> wake;
      RpcOps ops;
      switch (phase) {
        case Phase::kBackoff:
          if (fetched_headers) {
            ContinueAttempt(lk);
            continue;
          }
          if (attempt_running) break;  // FetchHeaders wakes the worker when it is done
          if (now >= backoff_until) {
            StartAttempt(lk);
            continue;
          }
          wake = backoff_until;
          break;
        case Phase::kConnecting:
          if (rpc->done) {
            OnRpcEnded(&ops);
            break;
          }
          if (!rpc->cancel_reason) {
            if (now >= attempt_deadline) {
              CancelRpc(rpc,
                        MakeError(ErrorKind::kConnection, true,
                                  "no create_stream_response from " +
                                      channel_settings.endpoint.target() +
                                      (attempt_capped_by_budget
                                           ? std::string(" before the send's time budget ended")
                                           : " within " + Millis(options.recovery_timeout) +
                                                 " (recovery_timeout)"),
                                  kGrpcDeadlineExceeded),
                        &ops);
            } else {
              wake = attempt_deadline;
            }
          }
          break;
        case Phase::kOpen:
          if (rpc->done) {
            OnRpcEnded(&ops);
            break;
          }
          if (!rpc->cancel_reason && wire_inflight() > 0) {
            const auto deadline = After(last_progress, options.server_lack_of_ack_timeout);
            const auto budget = OperationDeadline();
            if (now >= budget) {
              CancelRpc(rpc,
                        MakeError(ErrorKind::kTransmission, true,
                                  "no ack before the send's time budget ended, with " +
                                      std::to_string(wire_inflight()) + " requests in flight",
                                  kGrpcDeadlineExceeded),
                        &ops);
            } else if (now >= deadline) {
              CancelRpc(rpc,
                        MakeError(ErrorKind::kTransmission, true,
                                  "no ack for " + Millis(options.server_lack_of_ack_timeout) +
                                      " with " + std::to_string(wire_inflight()) +
                                      " requests in flight (server_lack_of_ack_timeout)",
                                  kGrpcDeadlineExceeded),
                        &ops);
            } else {
              wake = std::min(deadline, budget);
            }
          }
          break;
        case Phase::kPaused:
          if (rpc->done) {
            OnRpcEnded(&ops);
            break;
          }
          if (wire_inflight() == 0 || now >= pause_deadline) {
            // Switch RPCs: the old one is dropped (what it did not ack is replayed).
            std::shared_ptr<Rpc> old = std::move(rpc);
            rpc.reset();
            CancelRpc(old, MakeError(ErrorKind::kTransmission, true, "closed after close signal"),
                      &ops);
            phase = Phase::kBackoff;
            backoff_until = now;
            break;
          }
          {
            // The lack-of-ack bound holds while paused too: a server that announces a long
            // close and then stalls must not hold the stream (and Flush, Close) for that long.
            // It counts as a failed attempt, so a server that does it every time runs out the
            // recovery retries instead of looping.
            // The oldest request's time budget bounds it as well.
            const auto ack_deadline =
                std::min(After(last_progress, options.server_lack_of_ack_timeout),
                         OperationDeadline());
            if (!rpc->cancel_reason && now >= ack_deadline) {
              CancelRpc(rpc,
                        MakeError(ErrorKind::kTransmission, true,
                                  "no ack for " + Millis(options.server_lack_of_ack_timeout) +
                                      " after a close signal, with " +
                                      std::to_string(wire_inflight()) +
                                      " requests in flight (server_lack_of_ack_timeout)",
                                  kGrpcDeadlineExceeded),
                        &ops);
              break;
            }
            wake = std::min(pause_deadline, ack_deadline);
          }
          break;
        case Phase::kClosing:
          if (rpc->done) {
            OnRpcEnded(&ops);
            break;
          }
          if (now >= close_deadline) {
            if (!rpc->cancel_reason) {
              CancelRpc(rpc, MakeError(ErrorKind::kTransmission, false, "close drain timed out"),
                        &ops);
            }
          } else {
            wake = close_deadline;
          }
          break;
        case Phase::kClosed:
        case Phase::kFailed:
          break;
      }
      if (ops.any()) {
        lk.unlock();
        Execute(ops);
        lk.lock();
        continue;
      }
      if (phase != before) continue;  // the new phase has its own deadline
      if (!to_complete.empty() || !to_fail.empty() || stop) continue;
      if (wake && *wake != Clock::time_point::max()) {
        worker_cv.wait_until(lk, *wake);
      } else {
        worker_cv.wait(lk);
      }
    }
  }

  static void Execute(RpcOps& ops) {
    if (ops.rpc) ops.rpc->Execute(ops);
  }

  void StopWorker() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
      worker_cv.notify_all();
    }
    if (worker.joinable()) {
      if (on_worker()) {
        // Destroyed or closed from a completion callback: the worker holds its own reference
        // to the core and ends after the callback returns.
        DetachedWorkers::Get().Adopt(std::move(worker), worker_ended);
      } else {
        worker.join();
      }
    }
    // The worker starts no opener any more. A headers provider still running ends by its
    // budget; from a completion callback it is left to finish on its own (it holds its own
    // reference to the core).
    std::thread fetching;
    {
      std::lock_guard<std::mutex> lk(mu);
      fetching = std::move(opener);
    }
    if (fetching.joinable()) {
      if (on_worker()) {
        fetching.detach();
      } else {
        fetching.join();
      }
    }
  }

  ~Core() {
    // The last reference was the opener's own (the stream is gone): it cannot join itself.
    if (opener.joinable()) opener.detach();
  }
};

// ---- Rpc ---------------------------------------------------------------------------------------

namespace internal {

void Rpc::Start(const Headers& headers, grpc::ByteBuffer create_request) {
  for (const auto& [key, value] : headers) ctx.AddMetadata(key, value);
  grpc::GenericStub stub(channel_);
  stub.PrepareBidiStreamingCall(&ctx, core_->protocol->method(), grpc::StubOptions(), this);
  AddHold();  // writes are started from outside reactions
  StartRead(&read_buf_);
  write_buf_ = std::move(create_request);
  StartWrite(&write_buf_);
  StartCall();
}

void Rpc::Execute(RpcOps& ops) {
  if (ops.write) {
    auto framed = core_->protocol->Frame(ops.write_request, ops.write_offset);
    ops.write_request = {};
    if (framed.ok()) {
      write_buf_ = std::move(*framed);
      StartWrite(&write_buf_);
    } else {
      // Cannot happen short of memory: the request was encoded once already at admission.
      RpcOps more;
      {
        std::lock_guard<std::mutex> lk(core_->mu);
        writing = false;
        core_->CancelRpc(ops.rpc, MakeError(ErrorKind::kTransmission, false,
                                         "cannot frame a request: " + framed.status().message()),
                         &more);
        core_->MaybeReleaseHold(ops.rpc, &more);
      }
      if (more.cancel) ctx.TryCancel();
      if (more.remove_hold) RemoveHold();
    }
  }
  if (ops.writes_done) StartWritesDone();
  if (ops.cancel) ctx.TryCancel();
  if (ops.remove_hold) RemoveHold();
}

void Rpc::OnReadDone(bool ok) {
  RpcOps ops;
  auto me = self;  // alive until OnDone, which cannot run during this reaction
  AZ_TRACE("read done ok=%d", ok ? 1 : 0);
  if (!ok) {
    std::lock_guard<std::mutex> lk(core_->mu);
    dead = true;
    core_->MaybeReleaseHold(me, &ops);
  } else {
    std::vector<internal::WireEvent> events;
    bool opened;
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      opened = created;
    }
    core_->protocol->Parse(&read_buf_, opened, &events);
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      for (const auto& ev : events) core_->OnEvent(me, ev, &ops);
    }
    StartRead(&read_buf_);
  }
  Execute(ops);
}

void Rpc::OnWriteDone(bool ok) {
  RpcOps ops;
  auto me = self;
  write_buf_.Clear();  // drop the slice refs as soon as gRPC is done with them
  {
    std::lock_guard<std::mutex> lk(core_->mu);
    writing = false;
    if (!ok) write_failed = true;
    core_->Pump(me, &ops);
  }
  Execute(ops);
}

void Rpc::OnWritesDoneDone(bool ok) {
  RpcOps ops;
  auto me = self;
  {
    std::lock_guard<std::mutex> lk(core_->mu);
    writing = false;
    core_->MaybeReleaseHold(me, &ops);
  }
  Execute(ops);
}

void Rpc::OnDone(const grpc::Status& s) {
  AZ_TRACE("OnDone code=%d", static_cast<int>(s.error_code()));
  std::shared_ptr<Rpc> keep = std::move(self);
  std::shared_ptr<ZerobusStream::Core> core = core_;
  {
    std::lock_guard<std::mutex> lk(core->mu);
    status = s;
    done = true;
    --core->live_rpcs;
    core->worker_cv.notify_all();
    core->state_cv.notify_all();
  }
  // `keep` may be the last reference: this object ends here.
}

}  // namespace internal

// ---- ZerobusStream -----------------------------------------------------------------------------

ZerobusStream::ZerobusStream(std::shared_ptr<Core> core) : core_(std::move(core)) {}

arrow::Result<std::unique_ptr<ZerobusStream>> ZerobusStream::Open(StreamOptions options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  auto core = std::make_shared<Core>();
  ARROW_ASSIGN_OR_RAISE(core->channel_settings.endpoint,
                        internal::ParseEndpoint(options.endpoint, "endpoint"));
  core->channel_settings.ca_file = options.ca_file;
  core->channel_settings.application_name = options.application_name;
  core->channel_settings.connect_timeout = options.recovery_timeout;
  if (!options.ca_file.empty()) {
    if (!core->channel_settings.endpoint.tls) {
      return ConfigurationError("ca_file is set but endpoint '" + options.endpoint +
                                "' is plaintext http://");
    }
    ARROW_ASSIGN_OR_RAISE(core->ca_pem, internal::ReadCaFile(options.ca_file, "ca_file"));
  }
  if (options.record_type == RecordType::kArrow) {
    ARROW_ASSIGN_OR_RAISE(core->protocol, internal::MakeFlightProtocol(options));
    core->flight_schema = internal::FlightWireSchema(*options.arrow_schema);
    ARROW_ASSIGN_OR_RAISE(core->flight_ipc, internal::FlightIpcOptions(options.ipc_compression));
  } else {
    core->protocol = internal::MakeEphemeralProtocol(options);
  }
  core->options = std::move(options);
  core->backoff_until = Clock::now();
  {
    std::lock_guard<std::mutex> lk(core->mu);
    core->worker = std::thread([core, ended = core->worker_ended] {
      core->Run();
      ended->store(true);
    });
    core->worker_id = core->worker.get_id();
  }
  std::unique_ptr<ZerobusStream> stream(new ZerobusStream(core));
  std::unique_lock<std::mutex> lk(core->mu);
  core->state_cv.wait(lk, [&] {
    return core->phase == Phase::kOpen || core->phase == Phase::kPaused ||
           core->phase == Phase::kFailed;
  });
  if (core->phase == Phase::kFailed) {
    arrow::Status st = core->final_status;
    lk.unlock();
    return st;  // the destructor stops the worker
  }
  return stream;
}

ZerobusStream::~ZerobusStream() {
  Abort();
  core_->StopWorker();
  // Let cancelled RPCs finish so nothing outlives the stream for long (they hold the core).
  std::unique_lock<std::mutex> lk(core_->mu);
  core_->state_cv.wait_for(lk, std::chrono::seconds(5), [&] { return core_->live_rpcs == 0; });
}

arrow::Result<arrow::Future<IngestAck>> ZerobusStream::Admit(
    std::shared_ptr<arrow::Buffer> owner, std::string_view bytes, int64_t num_records, bool batch,
    RequestLimits request_limits, std::shared_ptr<const internal::FlightPiece> piece,
    int64_t* seq) {
  Core& c = *core_;
  if ((c.options.record_type == RecordType::kArrow) != (piece != nullptr)) {
    return MakeError(ErrorKind::kConversion, false,
                     piece ? "IngestArrowBatch needs a stream with record_type kArrow"
                           : "an Arrow Flight stream (record_type kArrow) takes only "
                             "IngestArrowBatch");
  }
  const int64_t size = piece ? piece->wire_bytes : static_cast<int64_t>(bytes.size());
  // The encoder chunks by the same rule, so every chunk it makes is admitted. (Flight has no
  // known per-message limit; its pieces are bounded by flight_piece_bytes.)
  const int64_t request = encode_internal::IngestRequestSize(size);
  if (!piece && request > kDefaultMaxRequestBytes) {
    return MakeError(ErrorKind::kTransmission, false,
                     "request of " + std::to_string(request) + " bytes (" + std::to_string(size) +
                         " bytes of records and the request header) exceeds the limit of " +
                         std::to_string(kDefaultMaxRequestBytes) +
                         " bytes per request (split the batch into smaller chunks)");
  }
  RpcOps ops;
  arrow::Future<IngestAck> future = arrow::Future<IngestAck>::Make();
  {
    std::unique_lock<std::mutex> lk(c.mu);
    const auto block_deadline = After(Clock::now(), c.options.block_timeout);
    const bool by_budget = request_limits.deadline < block_deadline;
    const auto deadline = by_budget ? request_limits.deadline : block_deadline;
    while (true) {
      if (c.phase == Phase::kFailed) return c.final_status;
      if (c.phase == Phase::kClosed || c.closing) {
        return MakeError(ErrorKind::kTransmission, false,
                         "stream to " + c.options.table_name + " is closed");
      }
      const int64_t count = static_cast<int64_t>(c.pending.size());
      if (count < c.options.max_inflight_requests &&
          (count == 0 || c.inflight_bytes + size <= c.options.max_inflight_bytes)) {
        break;
      }
      const std::string limits =
          std::to_string(count) + " requests / " + std::to_string(c.inflight_bytes) +
          " bytes in flight (max_inflight_requests=" +
          std::to_string(c.options.max_inflight_requests) +
          ", max_inflight_bytes=" + std::to_string(c.options.max_inflight_bytes) + ")";
      if (c.options.when_full == FullPolicy::kReject) {
        return MakeError(ErrorKind::kTransmission, true, "stream is full: " + limits);
      }
      if (c.on_worker()) {
        return MakeError(ErrorKind::kTransmission, true,
                         "stream is full and Ingest was called from a completion callback, "
                         "which must not block: " + limits);
      }
      if (deadline == Clock::time_point::max()) {
        c.state_cv.wait(lk);
      } else if (c.state_cv.wait_until(lk, deadline) == std::cv_status::timeout &&
                 Clock::now() >= deadline) {
        return MakeError(ErrorKind::kTransmission, true,
                         (by_budget ? std::string("the send's time budget ended waiting for room: ")
                                    : "timed out after " + Millis(c.options.block_timeout) +
                                          " waiting for room (block_timeout): ") +
                             limits);
      }
    }
    Request req;
    req.seq = c.next_seq++;
    if (seq) *seq = req.seq;
    req.batch = batch;
    req.num_records = num_records;
    req.owner = std::move(owner);
    req.bytes = bytes;
    req.piece = std::move(piece);
    req.size = size;
    req.limits = request_limits;
    req.future = future;
    c.pending.push_back(std::move(req));
    c.inflight_bytes += size;
    ++c.stats.requests_admitted;
    if (c.rpc) c.Pump(c.rpc, &ops);
  }
  Core::Execute(ops);
  return future;
}

arrow::Result<arrow::Future<IngestAck>> ZerobusStream::IngestFramedBatch(
    std::shared_ptr<arrow::Buffer> owner, std::string_view framed, int64_t num_records) {
  if (num_records < 1) {
    return ConversionError("a batch request needs at least one record, got num_records=" +
                           std::to_string(num_records));
  }
  auto counted = internal::CountFramedRecords(framed);
  if (!counted.ok()) return ConversionError(counted.status().message());
  if (*counted != num_records) {
    return ConversionError("framed bytes hold " + std::to_string(*counted) +
                           " records but num_records=" + std::to_string(num_records));
  }
  return Admit(std::move(owner), framed, num_records, true);
}

arrow::Result<arrow::Future<IngestAck>> ZerobusStream::IngestChunk(const EncodedBatch& batch,
                                                                   RecordRange range,
                                                                   RequestLimits limits) {
  const int64_t n = batch.num_records();
  if (range.begin < 0 || range.end > n || range.begin >= range.end ||
      static_cast<int64_t>(batch.record_offsets.size()) < range.end + 1 || !batch.buffer) {
    return ConversionError("chunk [" + std::to_string(range.begin) + ", " +
                           std::to_string(range.end) + ") is not a non-empty range of the " +
                           std::to_string(n) + " encoded records");
  }
  const int64_t from = batch.record_offsets[range.begin];
  const int64_t to = batch.record_offsets[range.end];
  if (from < 0 || to < from || to > batch.buffer->size()) {
    return ConversionError("chunk record offsets lie outside the encoded buffer");
  }
  std::string_view bytes(reinterpret_cast<const char*>(batch.buffer->data()) + from,
                         static_cast<size_t>(to - from));
  return Admit(batch.buffer, bytes, range.end - range.begin, true, limits);
}

std::vector<ZerobusStream::ArrowPiece> ZerobusStream::IngestArrowBatch(
    std::shared_ptr<arrow::RecordBatch> batch, RequestLimits limits) {
  Core& c = *core_;
  const int64_t rows = batch ? batch->num_rows() : 0;
  std::vector<ArrowPiece> out;
  auto refuse_all = [&](arrow::Status st) {
    out.push_back(ArrowPiece{RecordRange{0, rows}, arrow::Future<IngestAck>::MakeFinished(st)});
    return out;
  };
  if (c.options.record_type != RecordType::kArrow) {
    return refuse_all(ConversionError("IngestArrowBatch needs a stream with record_type kArrow"));
  }
  if (rows == 0) {
    return refuse_all(ConversionError(
        std::string("a record batch for the Arrow Flight stream needs at least one row, got ") +
        (batch ? "0 rows" : "no batch")));
  }
  std::string mismatch = internal::DescribeSchemaMismatch(*batch->schema(), *c.options.arrow_schema);
  if (!mismatch.empty()) {
    return refuse_all(ConversionError("record batch does not match the stream's arrow_schema: " +
                                      mismatch));
  }
  auto hydrated = internal::HydrateDictionaries(batch, c.flight_schema);
  if (!hydrated.ok()) {
    return refuse_all(ConversionError("cannot decode the dictionary columns: " +
                                      hydrated.status().message()));
  }
  arrow::Status refused;
  for (const auto& range : internal::SplitForFlight(**hydrated, c.options.flight_piece_bytes)) {
    if (refused.ok()) {
      auto piece = internal::EncodeFlightPiece(
          (*hydrated)->Slice(range.begin, range.end - range.begin), c.flight_ipc);
      if (!piece.ok()) {
        refused = ConversionError("cannot encode rows [" + std::to_string(range.begin) + ", " +
                                  std::to_string(range.end) + ") as Arrow IPC: " +
                                  piece.status().message());
      } else {
        int64_t seq = -1;
        auto f = Admit(nullptr, {}, range.end - range.begin, true, limits, std::move(*piece),
                       &seq);
        if (f.ok()) {
          out.push_back(ArrowPiece{range, std::move(*f), seq});
          continue;
        }
        refused = f.status();
      }
    }
    out.push_back(ArrowPiece{range, arrow::Future<IngestAck>::MakeFinished(refused)});
  }
  return out;
}

std::vector<arrow::Future<IngestAck>> ZerobusStream::IngestEncodedBatch(
    const EncodedBatch& batch) {
  std::vector<arrow::Future<IngestAck>> out;
  out.reserve(batch.chunks.size());
  arrow::Status refused;
  for (const auto& range : batch.chunks) {
    if (refused.ok()) {
      auto f = IngestChunk(batch, range);
      if (f.ok()) {
        out.push_back(std::move(*f));
        continue;
      }
      refused = f.status();
    }
    out.push_back(arrow::Future<IngestAck>::MakeFinished(refused));
  }
  return out;
}

arrow::Result<arrow::Future<IngestAck>> ZerobusStream::IngestRecord(
    std::shared_ptr<arrow::Buffer> owner, std::string_view record) {
  return Admit(std::move(owner), record, 1, false);
}

arrow::Result<arrow::Future<IngestAck>> ZerobusStream::IngestRecord(std::string record) {
  // Move the string into a buffer that owns it.
  struct StringBuffer : arrow::Buffer {
    explicit StringBuffer(std::string s) : arrow::Buffer(nullptr, 0), str(std::move(s)) {
      data_ = reinterpret_cast<const uint8_t*>(str.data());
      size_ = static_cast<int64_t>(str.size());
      capacity_ = size_;
    }
    std::string str;
  };
  auto owned = std::make_shared<StringBuffer>(std::move(record));
  std::string_view view(owned->str);
  return Admit(std::move(owned), view, 1, false);
}

arrow::Status ZerobusStream::Flush() { return Flush(core_->options.flush_timeout); }

arrow::Status ZerobusStream::Flush(milliseconds timeout) {
  Core& c = *core_;
  if (c.on_worker()) {
    return MakeError(ErrorKind::kTransmission, false,
                     "Flush cannot be called from a completion callback");
  }
  std::unique_lock<std::mutex> lk(c.mu);
  const int64_t target = c.next_seq - 1;
  const auto deadline = After(Clock::now(), timeout);
  auto done = [&] { return c.finished_through >= target; };
  bool reached = true;
  if (deadline == Clock::time_point::max()) {
    c.state_cv.wait(lk, done);
  } else {
    reached = c.state_cv.wait_until(lk, deadline, done);
  }
  if (c.phase == Phase::kFailed) return c.final_status;
  if (!reached) {
    return MakeError(ErrorKind::kTransmission, true,
                     "flush timed out after " + Millis(timeout) + " with " +
                         std::to_string(target - c.finished_through) + " requests unacked");
  }
  return arrow::Status::OK();
}

arrow::Status ZerobusStream::Close() {
  Core& c = *core_;
  if (c.on_worker()) {
    return MakeError(ErrorKind::kTransmission, false,
                     "Close cannot be called from a completion callback");
  }
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.phase == Phase::kClosed) return arrow::Status::OK();
    if (c.phase == Phase::kFailed) return c.final_status;
    c.closing = true;
  }
  arrow::Status flushed = Flush(c.options.flush_timeout);
  RpcOps ops;
  {
    std::unique_lock<std::mutex> lk(c.mu);
    if (!flushed.ok()) {
      c.Fail(MakeError(GetErrorKind(flushed), IsRetryable(flushed),
                       "close: " + flushed.message()),
             &ops);
    } else if (c.phase == Phase::kOpen || c.phase == Phase::kPaused) {
      // Half-close and let the server end the RPC.
      c.phase = Phase::kClosing;
      c.close_deadline = After(Clock::now(), c.options.recovery_timeout);
      c.rpc->writes_wanted_done = true;
      c.Pump(c.rpc, &ops);
      c.worker_cv.notify_all();
    } else if (c.phase != Phase::kFailed) {
      // Between RPCs with nothing pending: nothing to drain.
      if (c.rpc) c.CancelRpc(c.rpc, MakeError(ErrorKind::kTransmission, false, "closed"), &ops);
      c.rpc.reset();
      c.phase = Phase::kClosed;
      c.state_cv.notify_all();
    }
  }
  Core::Execute(ops);
  {
    // The worker finishes what failed or was acked (callbacks run on it only).
    std::unique_lock<std::mutex> lk(c.mu);
    c.state_cv.wait(lk, [&] {
      return (c.phase == Phase::kClosed || c.phase == Phase::kFailed) && c.AllFinished();
    });
  }
  c.StopWorker();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.phase == Phase::kClosed ? arrow::Status::OK() : c.final_status;
}

void ZerobusStream::Abort() {
  Core& c = *core_;
  RpcOps ops;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.phase == Phase::kFailed || c.phase == Phase::kClosed) return;
    c.Fail(MakeError(ErrorKind::kTransmission, false,
                     "stream to " + c.options.table_name + " aborted by the caller"),
           &ops);
  }
  Core::Execute(ops);
  // The worker finishes the failed futures (callbacks run on it only); from a callback, after
  // that callback returns.
  if (c.on_worker()) return;
  std::unique_lock<std::mutex> lk(c.mu);
  c.state_cv.wait(lk, [&] { return c.AllFinished(); });
}

std::vector<UnackedRequest> ZerobusStream::TakeUnacked() {
  std::lock_guard<std::mutex> lk(core_->mu);
  return std::move(core_->unacked);
}

StreamState ZerobusStream::state() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->PublicState();
}

arrow::Status ZerobusStream::final_status() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->final_status;
}

StreamStats ZerobusStream::stats() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  StreamStats s = core_->stats;
  s.inflight_requests = static_cast<int64_t>(core_->pending.size());
  s.inflight_bytes = core_->inflight_bytes;
  return s;
}

const StreamOptions& ZerobusStream::options() const { return core_->options; }

}  // namespace arrow_zerobus
