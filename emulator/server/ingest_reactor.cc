#include "server/ingest_reactor_internal.h"

#include <arrow/record_batch.h>

namespace arrow_zerobus::emulator {

using Clock = std::chrono::steady_clock;

void IngestReactor::Begin() {
  self_ = shared_from_this();
  service_->Register(self_);
  svc_->stats->StreamOpened();
  StartSendInitialMetadata();
  StartRead(&read_buffer_);
}

void IngestReactor::OnReadDone(bool ok) {
  if (!ok) {
    // Half-close (client is done) or a broken/cancelled call.
    std::unique_lock<std::mutex> lock(mu_);
    read_closed_ = true;
    if (!opened_) {
      RequestFinishLocked(EndedBeforeOpen());
    } else {
      EvaluateAcksLocked();
    }
    Act(lock);
    return;
  }
  bool keep_reading = HandleMessage();
  read_buffer_.Clear();
  read_slice_ = grpc::Slice();
  std::unique_lock<std::mutex> lock(mu_);
  keep_reading = keep_reading && !finish_requested_;
  if (keep_reading && pending_bytes_ > svc_->max_pending_bytes_per_stream) {
    // Back-pressure: resume from OnDurable once the table has caught up.
    read_paused_ = true;
    keep_reading = false;
  }
  lock.unlock();
  if (keep_reading) StartRead(&read_buffer_);
}

void IngestReactor::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  write_in_flight_ = false;
  if (!ok) {
    // The client is gone: nothing more can be delivered.
    pending_writes_.clear();
    RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write to client failed"));
  }
  Act(lock);
}

void IngestReactor::OnCancel() {
  std::unique_lock<std::mutex> lock(mu_);
  pending_writes_.clear();
  RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
  Act(lock);
}

void IngestReactor::OnDone() {
  if (stats_) {
    std::lock_guard<std::mutex> lock(stats_->mu);
    stats_->final_code = static_cast<int>(finish_status_.error_code());
    stats_->final_message = finish_status_.error_message();
    stats_->open.store(false);
  }
  if (svc_->log) {
    // Messages never hold tokens or secrets (see auth.cc), so they can be logged.
    std::string line = stats_ ? "stream " + stats_->stream_id + " table=" + stats_->table +
                                    " requests=" + std::to_string(stats_->requests.load()) +
                                    " rows=" + std::to_string(stats_->rows.load()) + " ended"
                              : NotOpenedText();
    line += " code=" + std::to_string(static_cast<int>(finish_status_.error_code()));
    if (!finish_status_.error_message().empty()) line += ": " + finish_status_.error_message();
    svc_->log(line);
  }
  svc_->stats->StreamClosed();
  service_->Unregister(this);
  ReleaseState();
  table_.reset();
  // Last statement: may destroy this.
  auto keep = std::move(self_);
}

void IngestReactor::Kick() {
  std::unique_lock<std::mutex> lock(mu_);
  EvaluateAcksLocked();
  Act(lock);
}

std::optional<std::string_view> IngestReactor::ReceivedBytes() {
  if (!read_buffer_.TrySingleSlice(&read_slice_).ok() &&
      !read_buffer_.DumpToSingleSlice(&read_slice_).ok()) {
    Refuse(grpc::StatusCode::INTERNAL, "cannot read the request bytes");
    return std::nullopt;
  }
  return std::string_view(reinterpret_cast<const char*>(read_slice_.begin()), read_slice_.size());
}

bool IngestReactor::Refuse(grpc::Status status) {
  std::unique_lock<std::mutex> lock(mu_);
  RequestFinishLocked(std::move(status));
  Act(lock);
  return false;
}

bool IngestReactor::Refuse(grpc::StatusCode code, std::string message) {
  return Refuse(grpc::Status(code, std::move(message)));
}

bool IngestReactor::RefuseLater(grpc::Status status, std::chrono::milliseconds delay) {
  std::weak_ptr<IngestReactor> weak = weak_from_this();
  svc_->scheduler->At(Clock::now() + delay, [weak, status = std::move(status)] {
    if (auto self = weak.lock()) self->Refuse(status);
  });
  return false;
}

bool IngestReactor::CheckToken() {
  if (svc_->no_auth) return true;
  AuthCheck check = svc_->tokens->CheckAnyToken(MetadataValue(ctx_, "authorization"));
  return check.ok() || Refuse(static_cast<grpc::StatusCode>(check.code), check.message);
}

bool IngestReactor::CheckTableAccess(const std::string& table) {
  table_key_ = LowerAscii(table);
  if (!svc_->no_auth) {
    AuthCheck check =
        svc_->tokens->CheckStreamAccess(MetadataValue(ctx_, "authorization"), table_key_);
    if (!check.ok()) return Refuse(static_cast<grpc::StatusCode>(check.code), check.message);
  }
  if (svc_->faults->CreationBlocked(table_key_)) {
    return Refuse(grpc::StatusCode::UNAVAILABLE, "6006 Pipeline creation is temporarily blocked "
                                                 "for table '" + table + "'; retry later");
  }
  return true;
}

std::shared_ptr<StreamStats> IngestReactor::NewStats(const std::string& table,
                                                     const std::string& record_type) {
  auto stats = std::make_shared<StreamStats>();
  stats->stream_id = NewUuid();
  stats->table = table;
  stats->record_type = record_type;
  stats->opened_at = std::chrono::system_clock::now();
  svc_->stats->Add(stats);
  if (svc_->log) {
    svc_->log("stream " + stats->stream_id + " table=" + table + " opened (" + record_type + ")");
  }
  return stats;
}

void IngestReactor::Opened(std::shared_ptr<StreamStats> stats, std::string first_write) {
  std::unique_lock<std::mutex> lock(mu_);
  stats_ = std::move(stats);
  opened_ = true;
  pending_writes_.push_back(PendingWrite{std::move(first_write)});
  ApplyRequestFaultsLocked();
  Act(lock);
}

bool IngestReactor::Store(int64_t offset, std::shared_ptr<arrow::RecordBatch> rows,
                          int64_t wire_bytes) {
  int64_t n = rows ? rows->num_rows() : 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RefreshFaultsLocked();
    acks_.Add(offset, n, wire_bytes, faults_);
    if (n > 0) pending_bytes_ += wire_bytes;
    ++next_offset_;
    if (faults_.partial_ack && AcksRows() && n > 0 && partial_at_ < 0 &&
        next_offset_ >= faults_.partial_ack->after_messages &&
        svc_->faults->Claim(faults_.partial_ack_rule)) {
      partial_at_ = offset;
      partial_rows_ = faults_.partial_ack->AckedOf(n);
    }
  }
  stats_->requests.fetch_add(1, std::memory_order_relaxed);
  stats_->rows.fetch_add(n, std::memory_order_relaxed);
  stats_->bytes.fetch_add(wire_bytes, std::memory_order_relaxed);

  if (n > 0) {
    // Outside the lock: the null sink runs the callback inline.
    std::weak_ptr<IngestReactor> weak = weak_from_this();
    table_->Append(std::move(rows), wire_bytes, [weak, offset, wire_bytes](arrow::Status st) {
      if (auto self = weak.lock()) self->OnDurable(offset, wire_bytes, std::move(st));
    });
  }

  std::unique_lock<std::mutex> lock(mu_);
  ApplyRequestFaultsLocked();
  EvaluateAcksLocked();  // a request without rows is acknowledgeable at once
  // Nothing after a partly acked message is read: the stream ends once its ack is out.
  bool go_on = !finish_requested_ && partial_at_ < 0;
  Act(lock);
  return go_on;
}

void IngestReactor::OnDurable(int64_t offset, int64_t wire_bytes, arrow::Status st) {
  std::unique_lock<std::mutex> lock(mu_);
  pending_bytes_ -= wire_bytes;
  bool resume = false;
  if (read_paused_ && !finish_requested_ &&
      pending_bytes_ <= svc_->max_pending_bytes_per_stream / 2) {
    read_paused_ = false;
    resume = true;
  }
  if (!st.ok()) {
    RequestFinishLocked(grpc::Status(grpc::StatusCode::INTERNAL,
                                     "offset " + std::to_string(offset) +
                                         ": table write failed: " + st.message()));
  } else {
    acks_.MarkDurable(offset);
    EvaluateAcksLocked();
  }
  Act(lock);
  if (resume) StartRead(&read_buffer_);
}

// ---- faults and acks (mu_ held) -----------------------------------------------------------

void IngestReactor::RefreshFaultsLocked() {
  uint64_t v = svc_->faults->version();
  if (v != faults_version_) {
    faults_ = svc_->faults->For(table_key_);
    faults_version_ = v;
  }
}

// Faults that fire on a request count: checked once the stream is open (count 0) and after each
// ingest request.
void IngestReactor::ApplyRequestFaultsLocked() {
  RefreshFaultsLocked();
  int64_t count = next_offset_;
  if (faults_.close_signal && !close_signal_sent_ &&
      count >= faults_.close_signal->after_requests &&
      svc_->faults->Claim(faults_.close_signal_rule)) {
    close_signal_sent_ = true;
    int64_t ms = faults_.close_signal->duration_ms;
    pending_writes_.push_back(PendingWrite{CloseSignalLocked(ms)});
    stats_->close_signals.fetch_add(1, std::memory_order_relaxed);
    std::weak_ptr<IngestReactor> weak = weak_from_this();
    svc_->scheduler->At(Clock::now() + std::chrono::milliseconds(ms), [weak] {
      if (auto self = weak.lock()) self->EndAfterCloseSignal();
    });
  }
  if (faults_.end_stream && count >= faults_.end_stream->after_requests &&
      svc_->faults->Claim(faults_.end_stream_rule)) {
    RequestFinishLocked(grpc::Status(static_cast<grpc::StatusCode>(faults_.end_stream->code),
                                     faults_.end_stream->message));
  }
}

void IngestReactor::EndAfterCloseSignal() {
  std::unique_lock<std::mutex> lock(mu_);
  RequestFinishLocked(grpc::Status::OK);
  Act(lock);
}

// Sends the highest ack whose rows are durable and whose delay/quota has passed; arms the timer
// for the next one; finishes a half-closed stream once everything is acked.
void IngestReactor::EvaluateAcksLocked() {
  if (finish_requested_ || !opened_) return;
  RefreshFaultsLocked();
  if (!faults_.withhold_acks) {
    std::optional<Clock::time_point> next_release;
    auto last = acks_.Release(std::chrono::milliseconds(faults_.ack_delay_ms), &next_release,
                              partial_at_);
    if (last) {
      acked_offset_ = last->offset;
      acked_rows_ = last->rows_through;
      QueueAckLocked();
    }
    const AckQueue::Entry* partial = acks_.front();
    if (partial_at_ >= 0 && partial && partial->offset == partial_at_ && partial->durable) {
      // All of the message is durable, fewer rows are claimed; acked_offset_ stays at the last
      // whole message, so the ack never claims more than is durable.
      acked_rows_ = partial->rows_through - partial->rows + partial_rows_;
      QueueAckLocked();
      RequestFinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "injected fault: offset " + std::to_string(partial_at_) +
                                           " acknowledged up to " +
                                           std::to_string(partial_rows_) + " of its " +
                                           std::to_string(partial->rows) + " rows"));
      return;
    }
    if (next_release && (!timer_armed_ || *next_release < timer_at_)) {
      timer_armed_ = true;
      timer_at_ = *next_release;
      std::weak_ptr<IngestReactor> weak = weak_from_this();
      svc_->scheduler->At(*next_release, [weak] {
        if (auto self = weak.lock()) self->OnTimer();
      });
    }
  }
  if (read_closed_ && (acks_.empty() || faults_.withhold_acks)) {
    // The client half-closed: end the RPC once all it sent is acknowledged.
    RequestFinishLocked(grpc::Status::OK);
  }
}

void IngestReactor::QueueAckLocked() {
  PendingWrite ack{AckLocked(), true, acked_offset_};
  // Acks are cumulative: a newer one replaces one still waiting to be written.
  if (!pending_writes_.empty() && pending_writes_.back().ack) {
    pending_writes_.back() = std::move(ack);
  } else {
    pending_writes_.push_back(std::move(ack));
  }
}

void IngestReactor::OnTimer() {
  std::unique_lock<std::mutex> lock(mu_);
  if (Clock::now() >= timer_at_) timer_armed_ = false;
  EvaluateAcksLocked();
  Act(lock);
}

void IngestReactor::RequestFinishLocked(grpc::Status status) {
  if (finish_requested_) return;
  finish_requested_ = true;
  finish_status_ = std::move(status);
}

// Starts the next write, or Finish once no write is in flight. Releases the lock.
void IngestReactor::Act(std::unique_lock<std::mutex>& lock) {
  bool write = false, finish = false;
  if (!write_in_flight_ && !finished_) {
    if (!pending_writes_.empty()) {
      PendingWrite& next = pending_writes_.front();
      grpc::Slice slice(next.bytes);
      current_write_ = grpc::ByteBuffer(&slice, 1);
      write_in_flight_ = true;
      write = true;
      if (next.ack && stats_) {
        stats_->acks.fetch_add(1, std::memory_order_relaxed);
        stats_->last_ack_offset.store(next.ack_offset, std::memory_order_relaxed);
      }
      pending_writes_.pop_front();
    } else if (finish_requested_) {
      finished_ = true;
      finish = true;
    }
  }
  grpc::Status status = finish ? finish_status_ : grpc::Status::OK;
  lock.unlock();
  if (write) StartWrite(&current_write_);
  if (finish) Finish(status);
}

}  // namespace arrow_zerobus::emulator
