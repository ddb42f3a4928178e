// ZerobusStream: the logical stream over a sequence of EphemeralStream (or Flight DoPut) RPCs.
// This file is the gRPC adapter; every decision (offsets, acks, timeouts, recovery, replay, which
// futures finish how) is made by internal::StreamMachine (stream_machine_internal.h), which the
// adapter feeds events under `mu` and whose actions it runs after releasing `mu`.
//
// Threads: gRPC's callback threads run the reactor (reads, write completions, the RPC's end) and
// only feed the machine under `mu` and start the next write; the stream's worker thread does
// everything that blocks or waits (the headers provider runs on an opener thread it starts;
// backoff, timeouts and switching RPCs after a close signal are its Ticks of the machine) and
// finishes the callers' futures. gRPC operations are never started while
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
#include <list>
#include <map>
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
#include "transport/stream_machine_internal.h"
#include "transport/wire_internal.h"

namespace arrow_zerobus {

namespace pb = databricks::zerobus;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Phase = internal::StreamPhase;

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

constexpr int kGrpcUnavailable = 14;

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

// gRPC operations decided under the lock and started after it is released: the machine's
// actions, resolved to their RPC objects.
struct RpcOps {
  struct Op {
    internal::StreamAction action;
    std::shared_ptr<internal::Rpc> rpc;
    Headers headers;                // kStartRpc
    grpc::ByteBuffer open_request;  // kStartRpc
  };
  std::vector<Op> ops;
  std::vector<std::shared_ptr<internal::Rpc>> release_holds;
  bool any() const { return !ops.empty() || !release_holds.empty(); }
};

}  // namespace

namespace internal {

// One RPC of the stream. Lives until OnDone (self-owned); fields marked (mu) are guarded by the
// core's mutex. Its flags say only what the reactor needs for its hold; what to write when is
// the machine's decision.
class Rpc : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Rpc(std::shared_ptr<ZerobusStream::Core> core, std::shared_ptr<grpc::Channel> channel,
      uint64_t id)
      : id(id), core_(std::move(core)), channel_(std::move(channel)) {}

  // Starts the call with `headers`, the create_stream request as its first write.
  void Start(const Headers& headers, grpc::ByteBuffer create_request);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  // Frames and starts the write of `request` at `offset` (the error: it cannot be framed).
  arrow::Status Write(const OutgoingRequest& request, int64_t offset);

  const uint64_t id;  // the machine's name for this RPC
  grpc::ClientContext ctx;
  std::shared_ptr<Rpc> self;  // released at the end of OnDone

  // (mu)
  bool writing = false;  // a write or writes-done is in flight
  bool writes_closed = false;
  bool write_failed = false;
  bool dead = false;  // the read side ended: the call is over
  bool hold_released = false;

 private:
  std::shared_ptr<ZerobusStream::Core> core_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ByteBuffer write_buf_;
  grpc::ByteBuffer read_buf_;
};

}  // namespace internal

// The adapter: runs the machine's actions over gRPC and feeds it events. Everything the machine
// does happens under `mu`; what it asks for runs after `mu` is released.
struct ZerobusStream::Core : std::enable_shared_from_this<ZerobusStream::Core> {
  using Rpc = internal::Rpc;
  using Phase = internal::StreamPhase;

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

  std::unique_ptr<internal::StreamMachine> machine;  // (mu)

  std::thread opener;  // runs FetchHeaders
  std::optional<arrow::Result<Headers>> fetched_headers;  // its result, for the worker
  arrow::Result<std::shared_ptr<grpc::Channel>> fetched_channel;
  // The validated headers and channel of the attempt the machine is starting.
  Headers attempt_headers;
  std::shared_ptr<grpc::Channel> attempt_channel;
  bool stop = false;  // the worker exits
  bool invalidate_headers = false;  // the token was refused: the next fetch drops it first
  internal::StreamPhase traced_phase = internal::StreamPhase::kBackoff;  // debug traces

  int64_t finished_through = -1;  // every future with seq <= this has been finished
  int delivering = 0;             // Deliver calls finishing futures right now
  std::vector<internal::StreamRequest> to_complete;
  std::vector<internal::StreamRequest> to_fail;

  std::map<uint64_t, std::shared_ptr<Rpc>> rpcs;  // started and not done, by the machine's id
  int live_rpcs = 0;

  std::thread worker;
  std::shared_ptr<std::atomic<bool>> worker_ended = std::make_shared<std::atomic<bool>>(false);
  std::thread::id worker_id;

  bool on_worker() const { return std::this_thread::get_id() == worker_id; }
  bool AllFinished() const {
    return finished_through >= machine->next_seq() - 1 && delivering == 0;
  }

  // ---- under mu ----------------------------------------------------------------------------

  // Takes what the machine decided: futures to finish go to the worker, gRPC operations to `ops`
  // (resolved to their RPC objects now, run after the lock is released).
  void Apply(internal::StreamActions&& acts, RpcOps* ops) {
    using Kind = internal::StreamAction::Kind;
    for (auto& req : acts.completed) to_complete.push_back(std::move(req));
    for (auto& req : acts.failed) to_fail.push_back(std::move(req));
    for (auto& a : acts.ops) {
      RpcOps::Op op;
      switch (a.kind) {
        case Kind::kFetchHeaders:
        case Kind::kWarn:
          break;
        case Kind::kInvalidateHeaders:
          // Done by the next fetch, before it asks for headers: never under `mu` (this may be
          // gRPC's callback thread, and a provider may block in Invalidate).
          invalidate_headers = true;
          continue;
        case Kind::kStartRpc: {
          auto r = std::make_shared<Rpc>(shared_from_this(), std::move(attempt_channel), a.rpc);
          attempt_channel.reset();
          r->self = r;
          r->writing = true;  // the create_stream request
          rpcs[a.rpc] = r;
          ++live_rpcs;
          for (auto& kv : attempt_headers) {
            if (kv.first == "x-databricks-zerobus-table-name" || kv.first == "user-agent") continue;
            op.headers.push_back(std::move(kv));
          }
          attempt_headers.clear();
          op.headers.emplace_back("x-databricks-zerobus-table-name", options.table_name);
          op.open_request = protocol->OpenRequest();
          op.rpc = std::move(r);
          break;
        }
        case Kind::kWrite:
        case Kind::kHalfClose:
        case Kind::kCancel: {
          auto it = rpcs.find(a.rpc);
          if (it == rpcs.end()) continue;  // already done
          op.rpc = it->second;
          if (a.kind == Kind::kWrite) op.rpc->writing = true;
          if (a.kind == Kind::kHalfClose) op.rpc->writing = op.rpc->writes_closed = true;
          if (a.kind == Kind::kCancel) AZ_TRACE("cancel rpc: %s", a.reason.ToString().c_str());
          break;
        }
      }
      op.action = std::move(a);
      ops->ops.push_back(std::move(op));
    }
    if (LogEnabled(LogSeverity::kDebug)) {
      if (!to_complete.empty()) {
        AZ_TRACE("acked through seq %lld", static_cast<long long>(to_complete.back().seq));
      }
      const internal::StreamPhase now_phase = machine->phase();
      if (now_phase != traced_phase) {
        AZ_TRACE("phase %s -> %s (%lld failed attempts so far)",
                 internal::StreamPhaseName(traced_phase), internal::StreamPhaseName(now_phase),
                 static_cast<long long>(machine->stats().rpc_failures));
        traced_phase = now_phase;
      }
    }
    worker_cv.notify_all();
    state_cv.notify_all();
  }

  void MaybeReleaseHold(const std::shared_ptr<Rpc>& r, RpcOps* ops) {
    if (!r->hold_released && !r->writing && (r->dead || r->write_failed || r->writes_closed)) {
      AZ_TRACE("release hold");
      r->hold_released = true;
      ops->release_holds.push_back(r);
    }
  }

  // How `status` ends an RPC the machine did not cancel (created: it signalled kOpened).
  internal::RpcEnd EndOf(const grpc::Status& status, bool created) const {
    internal::RpcEnd end;
    end.code = static_cast<int>(status.error_code());
    if (auto known = protocol->EndStatus(status)) {
      end.error = *known;
      return end;
    }
    const int code = end.code;
    const std::string& message = status.error_message();
    if (code == 0) {
      end.error = MakeError(ErrorKind::kTransmission, true,
                            "stream to " + options.table_name +
                                " ended by the server (OK) with requests unacked");
      return end;
    }
    if (!created && code == kGrpcUnavailable) {
      // Could not connect (refused, DNS, TLS, another protocol): say so.
      const std::string_view mismatch = ProtocolMismatch(message);
      if (!mismatch.empty()) {
        end.error = MakeError(ErrorKind::kConnection, false,
                              "cannot open stream to " + channel_settings.endpoint.target() +
                                  ": " + message + " (" + std::string(mismatch) + ")",
                              code);
        return end;
      }
      // A TLS server closes a plaintext connection without a word: the next attempt checks
      // whether the endpoint speaks TLS.
      end.probe_tls = !channel_settings.endpoint.tls &&
                      (ContainsNoCase(message, "socket closed") ||
                       ContainsNoCase(message, "connection reset"));
      const bool tls = ContainsNoCase(message, "handshake") || ContainsNoCase(message, "ssl") ||
                       ContainsNoCase(message, "certificate");
      std::string text = "cannot open stream to " + channel_settings.endpoint.target() + ": " +
                         std::string(GrpcCodeName(code)) + ": " + message;
      if (tls) {
        text += " (TLS verification failed: check ca_file and the endpoint's certificate)";
      }
      // A certificate that does not verify will not verify next time either.
      end.error = MakeError(ErrorKind::kConnection, !tls, std::move(text), code,
                            ParseServerErrorCode(message));
      return end;
    }
    end.error = FromGrpcStatus(code, message, "stream to " + options.table_name);
    return end;
  }

  // ---- outside mu ----------------------------------------------------------------------------

  void Execute(RpcOps& ops) {
    using Kind = internal::StreamAction::Kind;
    for (auto& op : ops.ops) {
      const internal::StreamAction& a = op.action;
      switch (a.kind) {
        case Kind::kFetchHeaders:
          StartFetch(a.budget, a.probe_tls);
          break;
        case Kind::kStartRpc:
          op.rpc->Start(op.headers, std::move(op.open_request));
          break;
        case Kind::kWrite: {
          arrow::Status framed = op.rpc->Write(a.request, a.offset);
          if (!framed.ok()) {
            // Cannot happen short of memory: the request was encoded once already at admission.
            RpcOps more;
            {
              std::lock_guard<std::mutex> lk(mu);
              op.rpc->writing = false;
              internal::StreamActions acts;
              machine->OnFrameFailed(op.rpc->id, framed, &acts);
              Apply(std::move(acts), &more);
              MaybeReleaseHold(op.rpc, &more);
            }
            Execute(more);
          }
          break;
        }
        case Kind::kHalfClose:
          op.rpc->StartWritesDone();
          break;
        case Kind::kCancel:
          op.rpc->ctx.TryCancel();
          break;
        case Kind::kWarn:
          // A failed attempt is shown by default (warning): a person waiting sees what happens.
          if (LogEnabled(LogSeverity::kWarning)) Log(LogSeverity::kWarning, a.text);
          break;
        case Kind::kInvalidateHeaders:
          break;
      }
    }
    for (auto& r : ops.release_holds) r->RemoveHold();
    ops = RpcOps();
  }

  // ---- worker --------------------------------------------------------------------------------

  // Finishes the futures of acked and failed requests, outside the lock. Runs on the worker
  // only, so completion callbacks always run there (the worker never blocks on a token fetch:
  // that runs on the opener thread).
  void Deliver(std::unique_lock<std::mutex>& lk) {
    if (to_complete.empty() && to_fail.empty()) return;
    std::vector<internal::StreamRequest> done = std::move(to_complete);
    std::vector<internal::StreamRequest> failed = std::move(to_fail);
    to_complete.clear();
    to_fail.clear();
    const arrow::Status status = machine->final_status();
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

  // The headers provider may block (a token endpoint): it runs on the opener thread, so that
  // the worker stays free to finish futures (Abort, Close) meanwhile. The previous opener has
  // finished already (its result was taken).
  void StartFetch(Clock::time_point budget, bool probe) {
    AZ_TRACE("start attempt");
    std::thread previous;
    {
      std::lock_guard<std::mutex> lk(mu);
      previous = std::move(opener);
    }
    if (previous.joinable()) previous.join();
    auto self = shared_from_this();
    std::thread next([self, budget, probe] { self->FetchHeaders(budget, probe); });
    std::lock_guard<std::mutex> lk(mu);
    opener = std::move(next);
  }

  // On the opener thread: the attempt's headers and channel, handed to the worker.
  void FetchHeaders(Clock::time_point budget, bool probe_tls_first) {
    bool invalidate;
    {
      std::lock_guard<std::mutex> lk(mu);
      invalidate = std::exchange(invalidate_headers, false);
    }
    if (invalidate) options.headers_provider->Invalidate();
    if (probe_tls_first && internal::SpeaksTls(channel_settings.endpoint.target(),
                                               internal::Deadline(budget).Cap(milliseconds(2000)))) {
      std::lock_guard<std::mutex> lk(mu);
      fetched_headers = arrow::Result<Headers>(MakeError(
          ErrorKind::kConnection, false,
          "cannot open stream to " + channel_settings.endpoint.target() +
              ": the server speaks TLS but the endpoint is plaintext http://: use https://"));
      worker_cv.notify_all();
      return;
    }
    auto headers = options.headers_provider->GetHeaders(budget);
    arrow::Result<std::shared_ptr<grpc::Channel>> channel;
    if (headers.ok()) channel = internal::MakeChannel(channel_settings, ca_pem);
    std::lock_guard<std::mutex> lk(mu);
    fetched_headers = std::move(headers);
    fetched_channel = std::move(channel);
    worker_cv.notify_all();
  }

  // On the worker, once FetchHeaders is done: checks the headers and tells the machine.
  void ContinueAttempt(RpcOps* ops) {
    arrow::Result<Headers> headers = std::move(*fetched_headers);
    arrow::Result<std::shared_ptr<grpc::Channel>> channel = std::move(fetched_channel);
    fetched_headers.reset();
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
    if (st.ok()) {
      attempt_headers = std::move(*headers);
      attempt_channel = std::move(*channel);
    }
    internal::StreamActions acts;
    machine->HeadersFetched(st, Clock::now(), &acts);
    Apply(std::move(acts), ops);
    attempt_headers.clear();
    attempt_channel.reset();
  }

  void Run() {
    std::unique_lock<std::mutex> lk(mu);
    while (true) {
      if (!to_complete.empty() || !to_fail.empty()) {
        Deliver(lk);
        continue;
      }
      if (stop) break;
      RpcOps ops;
      std::optional<Clock::time_point> wake;
      // After a fetch the machine is asked for its next wake-up too, so the worker never waits
      // without one however the fetch's result was handled.
      if (fetched_headers) ContinueAttempt(&ops);
      {
        internal::StreamActions acts;
        wake = machine->Tick(Clock::now(), &acts);
        if (!acts.empty()) Apply(std::move(acts), &ops);
      }
      if (ops.any()) {
        lk.unlock();
        Execute(ops);
        lk.lock();
        continue;
      }
      if (!to_complete.empty() || !to_fail.empty() || stop || fetched_headers) continue;
      if (wake && *wake != Clock::time_point::max()) {
        worker_cv.wait_until(lk, *wake);
      } else {
        worker_cv.wait(lk);
      }
    }
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

arrow::Status Rpc::Write(const OutgoingRequest& request, int64_t offset) {
  auto framed = core_->protocol->Frame(request, offset);
  if (!framed.ok()) return framed.status();
  write_buf_ = std::move(*framed);
  StartWrite(&write_buf_);
  return arrow::Status::OK();
}

void Rpc::OnReadDone(bool ok) {
  RpcOps ops;
  auto me = self;  // alive until OnDone, which cannot run during this reaction
  AZ_TRACE("read done ok=%d", ok ? 1 : 0);
  if (!ok) {
    std::lock_guard<std::mutex> lk(core_->mu);
    dead = true;
    core_->machine->OnReadEnded(id);
    core_->MaybeReleaseHold(me, &ops);
  } else {
    std::vector<WireEvent> events;
    bool opened;
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      opened = core_->machine->RpcCreated(id);
    }
    core_->protocol->Parse(&read_buf_, opened, &events);
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      StreamActions acts;
      const auto now = Clock::now();
      for (const auto& ev : events) core_->machine->OnWireEvent(id, ev, now, &acts);
      core_->Apply(std::move(acts), &ops);
    }
    StartRead(&read_buf_);
  }
  core_->Execute(ops);
}

void Rpc::OnWriteDone(bool ok) {
  RpcOps ops;
  auto me = self;
  write_buf_.Clear();  // drop the slice refs as soon as gRPC is done with them
  {
    std::lock_guard<std::mutex> lk(core_->mu);
    writing = false;
    if (!ok) write_failed = true;
    StreamActions acts;
    core_->machine->OnWriteDone(id, ok, Clock::now(), &acts);
    core_->Apply(std::move(acts), &ops);
    core_->MaybeReleaseHold(me, &ops);
  }
  core_->Execute(ops);
}

void Rpc::OnWritesDoneDone(bool ok) {
  RpcOps ops;
  auto me = self;
  {
    std::lock_guard<std::mutex> lk(core_->mu);
    writing = false;
    core_->MaybeReleaseHold(me, &ops);
  }
  core_->Execute(ops);
}

void Rpc::OnDone(const grpc::Status& s) {
  AZ_TRACE("OnDone code=%d msg=%s", static_cast<int>(s.error_code()), s.error_message().c_str());
  std::shared_ptr<Rpc> keep = std::move(self);
  std::shared_ptr<ZerobusStream::Core> core = core_;
  RpcOps ops;
  {
    std::lock_guard<std::mutex> lk(core->mu);
    core->rpcs.erase(id);
    --core->live_rpcs;
    if (core->machine->current_rpc() == id) {
      StreamActions acts;
      core->machine->OnRpcEnded(id, core->EndOf(s, core->machine->RpcCreated(id)), Clock::now(),
                                &acts);
      core->Apply(std::move(acts), &ops);
    }
    core->worker_cv.notify_all();
    core->state_cv.notify_all();
  }
  core->Execute(ops);
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
  auto settings =
      internal::StreamMachineSettings::From(core->options, core->channel_settings.endpoint.target());
  core->machine = std::make_unique<internal::StreamMachine>(std::move(settings), Clock::now());
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
    const Phase phase = core->machine->phase();
    return phase == Phase::kOpen || phase == Phase::kPaused || phase == Phase::kFailed;
  });
  if (core->machine->phase() == Phase::kFailed) {
    arrow::Status st = core->machine->final_status();
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
    const auto since = Clock::now();
    while (true) {
      const internal::AdmitDecision d =
          c.machine->DecideAdmit(size, request_limits, since, Clock::now(), !c.on_worker());
      if (d.kind == internal::AdmitDecision::Kind::kAdmit) break;
      if (d.kind == internal::AdmitDecision::Kind::kRefuse) return d.error;
      if (d.until == Clock::time_point::max()) {
        c.state_cv.wait(lk);
      } else {
        c.state_cv.wait_until(lk, d.until);
      }
    }
    internal::StreamRequest req;
    req.batch = batch;
    req.num_records = num_records;
    req.owner = std::move(owner);
    req.bytes = bytes;
    req.piece = std::move(piece);
    req.size = size;
    req.limits = request_limits;
    req.future = future;
    internal::StreamActions acts;
    const int64_t admitted = c.machine->Admit(std::move(req), Clock::now(), &acts);
    if (seq) *seq = admitted;
    c.Apply(std::move(acts), &ops);
  }
  c.Execute(ops);
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
  const int64_t target = c.machine->next_seq() - 1;
  const auto deadline = internal::SaturatingAfter(Clock::now(), timeout);
  auto done = [&] { return c.finished_through >= target; };
  bool reached = true;
  if (deadline == Clock::time_point::max()) {
    c.state_cv.wait(lk, done);
  } else {
    reached = c.state_cv.wait_until(lk, deadline, done);
  }
  if (c.machine->phase() == Phase::kFailed) return c.machine->final_status();
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
    if (c.machine->phase() == Phase::kClosed) return arrow::Status::OK();
    if (c.machine->phase() == Phase::kFailed) return c.machine->final_status();
    c.machine->BeginClose();
  }
  arrow::Status flushed = Flush(c.options.flush_timeout);
  RpcOps ops;
  {
    std::unique_lock<std::mutex> lk(c.mu);
    internal::StreamActions acts;
    if (!flushed.ok()) {
      c.machine->Fail(MakeError(GetErrorKind(flushed), IsRetryable(flushed),
                                "close: " + flushed.message()),
                      &acts);
    } else {
      c.machine->Close(Clock::now(), &acts);
    }
    c.Apply(std::move(acts), &ops);
  }
  c.Execute(ops);
  {
    // The worker finishes what failed or was acked (callbacks run on it only).
    std::unique_lock<std::mutex> lk(c.mu);
    c.state_cv.wait(lk, [&] {
      const Phase phase = c.machine->phase();
      return (phase == Phase::kClosed || phase == Phase::kFailed) && c.AllFinished();
    });
  }
  c.StopWorker();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.machine->phase() == Phase::kClosed ? arrow::Status::OK() : c.machine->final_status();
}

void ZerobusStream::Abort() {
  Core& c = *core_;
  RpcOps ops;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    const Phase phase = c.machine->phase();
    if (phase == Phase::kFailed || phase == Phase::kClosed) return;
    internal::StreamActions acts;
    c.machine->Fail(MakeError(ErrorKind::kTransmission, false,
                              "stream to " + c.options.table_name + " aborted by the caller"),
                    &acts);
    c.Apply(std::move(acts), &ops);
  }
  c.Execute(ops);
  // The worker finishes the failed futures (callbacks run on it only); from a callback, after
  // that callback returns.
  if (c.on_worker()) return;
  std::unique_lock<std::mutex> lk(c.mu);
  c.state_cv.wait(lk, [&] { return c.AllFinished(); });
}

std::vector<UnackedRequest> ZerobusStream::TakeUnacked() {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->machine->TakeUnacked();
}

StreamState ZerobusStream::state() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->machine->PublicState();
}

arrow::Status ZerobusStream::final_status() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->machine->final_status();
}

StreamStats ZerobusStream::stats() const {
  std::lock_guard<std::mutex> lk(core_->mu);
  return core_->machine->stats();
}

const StreamOptions& ZerobusStream::options() const { return core_->options; }

}  // namespace arrow_zerobus
