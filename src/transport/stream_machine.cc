// The stream's decisions (see stream_machine_internal.h): phases, wire offsets, in-flight limits,
// acks, timeouts, recovery and replay. No clock is read here: every time is a parameter.

#include "transport/stream_machine_internal.h"

#include <algorithm>
#include <utility>

#include "arrow_zerobus/errors.h"
#include "transport/flight_wire_internal.h"

namespace arrow_zerobus::internal {

namespace {

using std::chrono::milliseconds;

constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcUnauthenticated = 16;

std::string Millis(milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

const char* StreamPhaseName(StreamPhase phase) {
  switch (phase) {
    case StreamPhase::kBackoff:
      return "backoff";
    case StreamPhase::kConnecting:
      return "connecting";
    case StreamPhase::kOpen:
      return "open";
    case StreamPhase::kPaused:
      return "paused";
    case StreamPhase::kClosing:
      return "closing";
    case StreamPhase::kClosed:
      return "closed";
    case StreamPhase::kFailed:
      return "failed";
  }
  return "?";
}

StreamMachineSettings StreamMachineSettings::From(const StreamOptions& options,
                                                  std::string target) {
  StreamMachineSettings s;
  s.table_name = options.table_name;
  s.target = std::move(target);
  s.recovery = options.recovery;
  s.recovery_retries = options.recovery_retries;
  s.recovery_backoff = options.recovery_backoff;
  s.recovery_backoff_max = options.recovery_backoff_max;
  s.recovery_timeout = options.recovery_timeout;
  s.server_lack_of_ack_timeout = options.server_lack_of_ack_timeout;
  s.stream_paused_max_wait = options.stream_paused_max_wait;
  s.max_inflight_requests = options.max_inflight_requests;
  s.max_inflight_bytes = options.max_inflight_bytes;
  s.when_full = options.when_full;
  s.block_timeout = options.block_timeout;
  s.open_deadline = options.open_deadline;
  return s;
}

StreamMachine::StreamMachine(StreamMachineSettings settings, StreamTime now)
    : settings_(std::move(settings)), last_progress_(now), backoff_until_(now) {}

// ---- admission -------------------------------------------------------------------------------

arrow::Status StreamMachine::Refusal() const {
  if (phase_ == StreamPhase::kFailed) return final_status_;
  if (phase_ == StreamPhase::kClosed || closing_) {
    return MakeError(ErrorKind::kTransmission, false,
                     "stream to " + settings_.table_name + " is closed");
  }
  return arrow::Status::OK();
}

bool StreamMachine::HasRoom(int64_t size) const {
  const int64_t count = static_cast<int64_t>(pending_.size());
  return count < settings_.max_inflight_requests &&
         (count == 0 || inflight_bytes_ + size <= settings_.max_inflight_bytes);
}

std::string StreamMachine::InflightText() const {
  return std::to_string(pending_.size()) + " requests / " + std::to_string(inflight_bytes_) +
         " bytes in flight (max_inflight_requests=" +
         std::to_string(settings_.max_inflight_requests) +
         ", max_inflight_bytes=" + std::to_string(settings_.max_inflight_bytes) + ")";
}

AdmitDecision StreamMachine::DecideAdmit(int64_t size, const RequestLimits& limits,
                                        StreamTime since, StreamTime now, bool may_block) const {
  AdmitDecision d;
  auto refuse = [&](arrow::Status error) {
    d.kind = AdmitDecision::Kind::kRefuse;
    d.error = std::move(error);
    return d;
  };
  if (arrow::Status refusal = Refusal(); !refusal.ok()) return refuse(std::move(refusal));
  if (HasRoom(size)) return d;
  const std::string inflight = InflightText();
  if (settings_.when_full == FullPolicy::kReject) {
    return refuse(MakeError(ErrorKind::kTransmission, true, "stream is full: " + inflight));
  }
  if (!may_block) {
    return refuse(MakeError(ErrorKind::kTransmission, true,
                            "stream is full and Ingest was called from a completion callback, "
                            "which must not block: " + inflight));
  }
  const StreamTime block_deadline = SaturatingAfter(since, settings_.block_timeout);
  const bool by_budget = limits.deadline < block_deadline;
  const StreamTime deadline = by_budget ? limits.deadline : block_deadline;
  if (deadline != StreamTime::max() && now >= deadline) {
    return refuse(MakeError(
        ErrorKind::kTransmission, true,
        (by_budget ? std::string("the send's time budget ended waiting for room: ")
                   : "timed out after " + Millis(settings_.block_timeout) +
                         " waiting for room (block_timeout): ") +
            inflight));
  }
  d.kind = AdmitDecision::Kind::kWait;
  d.until = deadline;
  return d;
}

int64_t StreamMachine::Admit(StreamRequest request, StreamTime now, StreamActions* out) {
  request.seq = next_seq_++;
  request.acked_rows = 0;
  request.sends = 0;
  const int64_t seq = request.seq;
  inflight_bytes_ += request.size;
  pending_.push_back(std::move(request));
  ++stats_.requests_admitted;
  Pump(now, out);
  return seq;
}

// ---- the current RPC ---------------------------------------------------------------------------

// The next write on the current RPC: an ingest request, or the half-close once asked for.
void StreamMachine::Pump(StreamTime now, StreamActions* out) {
  if (!rpc_) return;
  RpcSlot& r = *rpc_;
  if (r.writing || r.read_ended || r.write_failed || r.writes_closed) return;
  if (r.created && phase_ == StreamPhase::kOpen && next_send_seq_ < next_seq_) {
    StreamRequest& req = pending_[next_send_seq_ - pending_.front().seq];
    // The lack-of-ack clock starts with the first request in flight.
    if (wire_inflight() == 0) last_progress_ = now;
    StreamAction a;
    a.kind = StreamAction::Kind::kWrite;
    a.rpc = r.id;
    a.request = OutgoingRequest{req.batch, req.owner, req.bytes, req.piece, req.acked_rows};
    a.offset = next_send_seq_ - rpc_base_seq_;
    out->ops.push_back(std::move(a));
    if (req.sends > 0) {
      ++stats_.requests_replayed;
      stats_.records_replayed += req.num_records - req.acked_rows;
    }
    rpc_rows_sent_ += req.num_records - req.acked_rows;
    ++req.sends;
    ++stats_.requests_sent;
    stats_.bytes_sent += req.size;
    ++next_send_seq_;
    r.writing = true;
    return;
  }
  if (r.writes_wanted_done) {
    r.writing = true;
    r.writes_closed = true;
    StreamAction a;
    a.kind = StreamAction::Kind::kHalfClose;
    a.rpc = r.id;
    out->ops.push_back(std::move(a));
  }
}

// Ends the current RPC from this side; `reason` is what its end reports.
void StreamMachine::Cancel(arrow::Status reason, StreamActions* out) {
  if (!rpc_) return;
  if (!rpc_->cancel_reason) rpc_->cancel_reason = reason;
  StreamAction a;
  a.kind = StreamAction::Kind::kCancel;
  a.rpc = rpc_->id;
  a.reason = std::move(reason);
  out->ops.push_back(std::move(a));
}

void StreamMachine::OnWriteDone(uint64_t rpc, bool ok, StreamTime now, StreamActions* out) {
  if (!Current(rpc)) return;
  rpc_->writing = false;
  if (!ok) rpc_->write_failed = true;
  Pump(now, out);
}

void StreamMachine::OnReadEnded(uint64_t rpc) {
  if (Current(rpc)) rpc_->read_ended = true;
}

void StreamMachine::OnFrameFailed(uint64_t rpc, const arrow::Status& error, StreamActions* out) {
  if (!Current(rpc)) return;
  rpc_->writing = false;
  Cancel(MakeError(ErrorKind::kTransmission, false, "cannot frame a request: " + error.message()),
         out);
}

// ---- server messages ---------------------------------------------------------------------------

void StreamMachine::OnWireEvent(uint64_t rpc, const WireEvent& ev, StreamTime now,
                                StreamActions* out) {
  using Kind = WireEvent::Kind;
  if (!Current(rpc)) return;  // a detached RPC: its acks are covered by the replay
  RpcSlot& r = *rpc_;
  switch (ev.kind) {
    case Kind::kError:
      Cancel(ev.error, out);
      return;
    case Kind::kOpened: {
      if (r.created) return;
      r.created = true;
      stats_.stream_id = ev.stream_id;
      ++stats_.rpcs_opened;
      if (phase_ != StreamPhase::kConnecting) return;
      phase_ = StreamPhase::kOpen;
      rpc_base_seq_ = pending_.empty() ? next_seq_ : pending_.front().seq;
      next_send_seq_ = rpc_base_seq_;
      rpc_acked_ = -1;
      rpc_rows_sent_ = 0;
      rpc_rows_acked_ = 0;
      last_progress_ = now;
      if (pending_.empty()) {
        // Nothing to prove by an ack: the open itself is progress.
        failed_attempts_ = 0;
        auth_retry_used_ = false;
      }
      Pump(now, out);
      return;
    }
    case Kind::kAckOffset: {
      if (!r.created) {
        Cancel(ProtocolError("ack before create_stream_response"), out);
        return;
      }
      const int64_t w = ev.value;
      const int64_t sent = next_send_seq_ - rpc_base_seq_;
      if (w < rpc_acked_) {
        Cancel(ProtocolError("ack went backwards from offset " + std::to_string(rpc_acked_) +
                             " to " + std::to_string(w)),
               out);
        return;
      }
      if (w >= sent) {
        Cancel(ProtocolError("ack for offset " + std::to_string(w) + " but only " +
                             std::to_string(sent) + " requests were sent"),
               out);
        return;
      }
      if (w == rpc_acked_) return;
      const int64_t durable = rpc_base_seq_ + w;
      while (!pending_.empty() && pending_.front().seq <= durable) CompleteFront(out);
      OnAckProgress(now);
      return;
    }
    case Kind::kAckRecords: {
      // Cumulative rows of this RPC: a request is durable once the count covers its last row.
      // Lower or equal counts (0 included) say nothing new; more than was sent is a lie that
      // would corrupt what recovery replays, so it ends the stream.
      const int64_t n = ev.value;
      if (n > rpc_rows_sent_) {
        Cancel(ProtocolError("ack claims " + std::to_string(n) + " records, but only " +
                             std::to_string(rpc_rows_sent_) +
                             " records were sent on this stream"),
               out);
        return;
      }
      if (n <= rpc_rows_acked_) return;
      int64_t fresh = n - rpc_rows_acked_;
      rpc_rows_acked_ = n;
      while (fresh > 0 && !pending_.empty() && pending_.front().seq < next_send_seq_) {
        StreamRequest& req = pending_.front();
        const int64_t left = req.num_records - req.acked_rows;
        if (fresh < left) {
          req.acked_rows += fresh;  // partly durable: a replay sends only the rest
          break;
        }
        fresh -= left;
        CompleteFront(out);
      }
      OnAckProgress(now);
      return;
    }
    case Kind::kCloseSignal: {
      ++stats_.close_signals;
      if (phase_ != StreamPhase::kOpen || !settings_.recovery) return;
      milliseconds wait = std::max(ev.close_after, milliseconds(0));
      if (settings_.stream_paused_max_wait) {
        wait = std::min(wait, *settings_.stream_paused_max_wait);
      }
      phase_ = StreamPhase::kPaused;
      pause_deadline_ = SaturatingAfter(now, wait);
      return;
    }
  }
}

// The oldest pending request is durable.
void StreamMachine::CompleteFront(StreamActions* out) {
  StreamRequest& req = pending_.front();
  rpc_acked_ = req.seq - rpc_base_seq_;
  inflight_bytes_ -= req.size;
  ++stats_.requests_acked;
  stats_.records_acked += req.num_records;
  stats_.bytes_acked += req.size;
  out->completed.push_back(std::move(req));
  pending_.pop_front();
}

void StreamMachine::OnAckProgress(StreamTime now) {
  last_progress_ = now;
  failed_attempts_ = 0;
  auth_retry_used_ = false;
}

// ---- ends, failures and recovery -------------------------------------------------------------

void StreamMachine::OnRpcEnded(uint64_t rpc, const RpcEnd& end, StreamTime now,
                               StreamActions* out) {
  if (!Current(rpc)) return;
  RpcSlot r = std::move(*rpc_);
  rpc_.reset();
  if (phase_ == StreamPhase::kClosing) {
    // Everything was acked before the half-close; how the drain ends does not matter.
    phase_ = StreamPhase::kClosed;
    return;
  }
  const bool planned = phase_ == StreamPhase::kPaused && end.code == 0 && !r.cancel_reason;
  if (planned) {
    // The server ended the stream it announced: reopen at once and replay.
    phase_ = StreamPhase::kBackoff;
    backoff_until_ = now;
    return;
  }
  ++stats_.rpc_failures;
  arrow::Status st = r.cancel_reason ? *r.cancel_reason : end.error;
  if (!r.cancel_reason && end.probe_tls) probe_tls_ = true;
  last_error_ = st;
  // A refused token: drop it, fetch a fresh one and reopen once (protocol doc section 3).
  if (!r.cancel_reason &&
      (end.code == kGrpcUnauthenticated || end.code == kGrpcPermissionDenied) &&
      !auth_retry_used_) {
    auth_retry_used_ = true;
    StreamAction a;
    a.kind = StreamAction::Kind::kInvalidateHeaders;
    out->ops.push_back(std::move(a));
    phase_ = StreamPhase::kBackoff;
    backoff_until_ = now;
    return;
  }
  ScheduleRetryOrFail(std::move(st), now, out);
}

void StreamMachine::Fail(arrow::Status status, StreamActions* out) {
  if (phase_ == StreamPhase::kFailed || phase_ == StreamPhase::kClosed) return;
  phase_ = StreamPhase::kFailed;
  final_status_ = std::move(status);
  for (auto& req : pending_) {
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
    unacked_.push_back(std::move(u));
    ++stats_.requests_failed;
    out->failed.push_back(std::move(req));
  }
  out->failure = final_status_;
  pending_.clear();
  inflight_bytes_ = 0;
  if (rpc_) {
    Cancel(final_status_, out);
    rpc_.reset();
  }
}

void StreamMachine::ScheduleRetryOrFail(arrow::Status st, StreamTime now, StreamActions* out) {
  if (!IsRetryable(st) || !settings_.recovery) {
    Fail(std::move(st), out);
    return;
  }
  ++failed_attempts_;
  if (failed_attempts_ == 1) first_error_ = st;
  if (failed_attempts_ == 1 || !recovery_policy_) {
    recovery_policy_ = std::make_unique<LimitedErrorCountRetryPolicy>(settings_.recovery_retries);
    recovery_backoff_ = std::make_unique<ExponentialBackoffPolicy>(
        settings_.recovery_backoff, settings_.recovery_backoff_max, 2.0, 0.5);
  }
  const auto* detail = GetZerobusDetail(st);
  auto give_up = [&](const std::string& why) {
    Fail(MakeError(GetErrorKind(st), true,
                   "stream recovery gave up after " + std::to_string(failed_attempts_) +
                       " failed attempts" + why + "; last error: " + st.message() +
                       (first_error_.message() == st.message()
                            ? std::string()
                            : "; first attempt's error: " + first_error_.message()),
                   detail ? detail->grpc_code() : std::nullopt,
                   detail ? detail->server_code() : std::nullopt),
         out);
  };
  if (!recovery_policy_->OnFailure(st)) return give_up("");
  const milliseconds delay = settings_.jitter ? recovery_backoff_->OnCompletion(settings_.jitter())
                                              : recovery_backoff_->OnCompletion();
  const StreamTime budget = OperationDeadline();
  if (budget != StreamTime::max() && SaturatingAfter(now, delay) >= budget) {
    return give_up(" (the send's time budget ends before the next attempt could start, " +
                   Millis(delay) + " from now)");
  }
  // A failed attempt is shown by default (warning): a person waiting sees what happens.
  StreamAction warn;
  warn.kind = StreamAction::Kind::kWarn;
  warn.text = "stream to " + settings_.table_name + ": attempt " +
              std::to_string(failed_attempts_) + " failed (" + st.message() + "); next attempt " +
              std::to_string(failed_attempts_ + 1) + " of " +
              std::to_string(settings_.recovery_retries + 1) + " in " + Millis(delay);
  out->ops.push_back(std::move(warn));
  phase_ = StreamPhase::kBackoff;
  backoff_until_ = now + delay;
}

// The budget recovery draws from: Open's while no RPC has opened yet, then the oldest
// unacknowledged request's (acks are cumulative: nothing behind it is acked before it).
StreamTime StreamMachine::OperationDeadline() const {
  StreamTime d = stats_.rpcs_opened == 0 ? settings_.open_deadline : StreamTime::max();
  if (!pending_.empty()) d = std::min(d, pending_.front().limits.deadline);
  return d;
}

// A request that already went on the wire as often as its sender allows: the stream fails
// rather than send it again (retryable, so that the rest can go elsewhere).
std::optional<arrow::Status> StreamMachine::SendsSpent() const {
  for (const auto& req : pending_) {
    if (req.limits.max_sends > 0 && req.sends >= req.limits.max_sends) {
      return MakeError(ErrorKind::kTransmission, true,
                       "a request of " + std::to_string(req.num_records) +
                           " row(s) went on the wire " + std::to_string(req.sends) +
                           " time(s), the most allowed (max_sends_per_row), and was not "
                           "acknowledged" +
                           (last_error_.ok() ? "" : "; last error: " + last_error_.message()));
    }
  }
  return std::nullopt;
}

void StreamMachine::StartAttempt(StreamActions* out) {
  if (auto spent = SendsSpent()) {
    Fail(std::move(*spent), out);
    return;
  }
  fetching_ = true;
  StreamAction a;
  a.kind = StreamAction::Kind::kFetchHeaders;
  a.budget = OperationDeadline();
  a.probe_tls = std::exchange(probe_tls_, false);
  out->ops.push_back(std::move(a));
}

void StreamMachine::HeadersFetched(const arrow::Status& status, StreamTime now,
                                   StreamActions* out) {
  fetching_ = false;
  if (phase_ != StreamPhase::kBackoff) return;  // failed or aborted meanwhile
  if (!status.ok()) {
    ++stats_.rpc_failures;
    last_error_ = status;
    ScheduleRetryOrFail(status, now, out);
    return;
  }
  const StreamTime budget = OperationDeadline();
  rpc_.emplace();
  rpc_->id = ++last_rpc_id_;
  rpc_->writing = true;  // the open request
  phase_ = StreamPhase::kConnecting;
  attempt_deadline_ = SaturatingAfter(now, settings_.recovery_timeout);
  attempt_capped_by_budget_ = budget < attempt_deadline_;
  if (attempt_capped_by_budget_) attempt_deadline_ = budget;
  StreamAction a;
  a.kind = StreamAction::Kind::kStartRpc;
  a.rpc = rpc_->id;
  out->ops.push_back(std::move(a));
}

void StreamMachine::Close(StreamTime now, StreamActions* out) {
  if (phase_ == StreamPhase::kOpen || phase_ == StreamPhase::kPaused) {
    // Half-close and let the server end the RPC.
    phase_ = StreamPhase::kClosing;
    close_deadline_ = SaturatingAfter(now, settings_.recovery_timeout);
    rpc_->writes_wanted_done = true;
    Pump(now, out);
  } else if (phase_ != StreamPhase::kFailed && phase_ != StreamPhase::kClosed) {
    // Between RPCs with nothing pending: nothing to drain.
    Cancel(MakeError(ErrorKind::kTransmission, false, "closed"), out);
    rpc_.reset();
    phase_ = StreamPhase::kClosed;
  }
}

// ---- timers ------------------------------------------------------------------------------------

std::optional<StreamTime> StreamMachine::Tick(StreamTime now, StreamActions* out) {
  while (true) {
    const StreamPhase before = phase_;
    std::optional<StreamTime> wake = TickOnce(now, out);
    if (phase_ == before) return wake;  // the new phase has its own deadline
  }
}

std::optional<StreamTime> StreamMachine::TickOnce(StreamTime now, StreamActions* out) {
  switch (phase_) {
    case StreamPhase::kBackoff:
      if (fetching_) return std::nullopt;  // HeadersFetched comes
      if (now >= backoff_until_) {
        StartAttempt(out);
        return std::nullopt;
      }
      return backoff_until_;
    case StreamPhase::kConnecting:
      if (rpc_->cancel_reason) return std::nullopt;  // its end comes
      if (now >= attempt_deadline_) {
        Cancel(MakeError(ErrorKind::kConnection, true,
                         "no create_stream_response from " + settings_.target +
                             (attempt_capped_by_budget_
                                  ? std::string(" before the send's time budget ended")
                                  : " within " + Millis(settings_.recovery_timeout) +
                                        " (recovery_timeout)"),
                         kGrpcDeadlineExceeded),
               out);
        return std::nullopt;
      }
      return attempt_deadline_;
    case StreamPhase::kOpen: {
      if (rpc_->cancel_reason || wire_inflight() == 0) return std::nullopt;
      const StreamTime deadline =
          SaturatingAfter(last_progress_, settings_.server_lack_of_ack_timeout);
      const StreamTime budget = OperationDeadline();
      if (now >= budget) {
        Cancel(MakeError(ErrorKind::kTransmission, true,
                         "no ack before the send's time budget ended, with " +
                             std::to_string(wire_inflight()) + " requests in flight",
                         kGrpcDeadlineExceeded),
               out);
        return std::nullopt;
      }
      if (now >= deadline) {
        Cancel(MakeError(ErrorKind::kTransmission, true,
                         "no ack for " + Millis(settings_.server_lack_of_ack_timeout) + " with " +
                             std::to_string(wire_inflight()) +
                             " requests in flight (server_lack_of_ack_timeout)",
                         kGrpcDeadlineExceeded),
               out);
        return std::nullopt;
      }
      return std::min(deadline, budget);
    }
    case StreamPhase::kPaused: {
      if (wire_inflight() == 0 || now >= pause_deadline_) {
        // Switch RPCs: the old one is dropped (what it did not ack is replayed).
        Cancel(MakeError(ErrorKind::kTransmission, true, "closed after close signal"), out);
        rpc_.reset();
        phase_ = StreamPhase::kBackoff;
        backoff_until_ = now;
        return std::nullopt;
      }
      // The lack-of-ack bound holds while paused too: a server that announces a long close and
      // then stalls must not hold the stream (and Flush, Close) for that long. It counts as a
      // failed attempt, so a server that does it every time runs out the recovery retries
      // instead of looping. The oldest request's time budget bounds it as well.
      const StreamTime ack_deadline =
          std::min(SaturatingAfter(last_progress_, settings_.server_lack_of_ack_timeout),
                   OperationDeadline());
      if (rpc_->cancel_reason) return pause_deadline_;  // its end comes, or the switch
      if (now >= ack_deadline) {
        Cancel(MakeError(ErrorKind::kTransmission, true,
                         "no ack for " + Millis(settings_.server_lack_of_ack_timeout) +
                             " after a close signal, with " + std::to_string(wire_inflight()) +
                             " requests in flight (server_lack_of_ack_timeout)",
                         kGrpcDeadlineExceeded),
               out);
        return pause_deadline_;
      }
      return std::min(pause_deadline_, ack_deadline);
    }
    case StreamPhase::kClosing:
      if (now >= close_deadline_) {
        if (!rpc_->cancel_reason) {
          Cancel(MakeError(ErrorKind::kTransmission, false, "close drain timed out"), out);
        }
        return std::nullopt;
      }
      return close_deadline_;
    case StreamPhase::kClosed:
    case StreamPhase::kFailed:
      return std::nullopt;
  }
  return std::nullopt;
}

// ---- state -------------------------------------------------------------------------------------

StreamState StreamMachine::PublicState() const {
  switch (phase_) {
    case StreamPhase::kBackoff:
    case StreamPhase::kConnecting:
      return StreamState::kRecovering;
    case StreamPhase::kOpen:
    case StreamPhase::kClosing:
      return StreamState::kOpen;
    case StreamPhase::kPaused:
      return StreamState::kPaused;
    case StreamPhase::kClosed:
      return StreamState::kClosed;
    case StreamPhase::kFailed:
      return StreamState::kFailed;
  }
  return StreamState::kFailed;
}

StreamStats StreamMachine::stats() const {
  StreamStats s = stats_;
  s.inflight_requests = static_cast<int64_t>(pending_.size());
  s.inflight_bytes = inflight_bytes_;
  return s;
}

}  // namespace arrow_zerobus::internal
