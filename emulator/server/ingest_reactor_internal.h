// What every ingest RPC shares, whatever its wire protocol (EphemeralStream, Flight DoPut): one
// gRPC callback reactor per RPC with its write queue, rows appended to the table and
// acknowledged cumulatively once durable, request-count faults, back-pressure, stats and
// lifetime. A protocol subclass parses its messages and says how acks and close signals look.
//
// Locking: all state is guarded by mu_; gRPC Start*/Finish calls are decided under the lock and
// made after releasing it, because on non-gRPC threads (the committer, the timer) gRPC may run
// the completion callback inline, which takes the lock again. The read path (one read at a time)
// owns the fields marked so without the lock.
//
// Lifetime: owned by self_ from Begin until OnDone; durable-append and timer callbacks hold weak
// pointers, so a late callback after the RPC ended does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/type_fwd.h>
#include <grpcpp/grpcpp.h>

#include "server/ack_queue_internal.h"
#include "server/stream_service_internal.h"

namespace arrow_zerobus::emulator {

class IngestReactor : public grpc::ServerGenericBidiReactor,
                      public LiveStream,
                      public std::enable_shared_from_this<IngestReactor> {
 public:
  IngestReactor(ZerobusService* service, const ServiceContext* svc,
                grpc::GenericCallbackServerContext* ctx)
      : svc_(svc), ctx_(ctx), service_(service) {}

  // Registers the stream, sends the initial metadata at once (real clients wait for it before
  // they send anything) and starts reading.
  void Begin();

  void OnReadDone(bool ok) final;
  void OnWriteDone(bool ok) final;
  void OnCancel() final;
  void OnDone() final;
  // Re-evaluates acks (faults changed).
  void Kick() final;

 protected:
  // ---- what a protocol provides ---------------------------------------------------------------

  // Handles the message just received (ReceivedBytes()); false = stop reading.
  virtual bool HandleMessage() = 0;
  // How the RPC ends when the client half-closes before the stream was opened.
  virtual grpc::Status EndedBeforeOpen() const = 0;
  // The serialized ack of everything up to acked_offset_ / acked_rows_ (mu_ held).
  virtual std::string AckLocked() const = 0;
  // The serialized close signal: "this RPC ends in `duration_ms`" (mu_ held).
  virtual std::string CloseSignalLocked(int64_t duration_ms) const = 0;
  // Whether acks count rows, so the partial_ack fault can acknowledge part of a message.
  virtual bool AcksRows() const { return false; }
  // Log text for an RPC that ended before the stream was opened.
  virtual std::string NotOpenedText() const = 0;
  // Drops protocol state in OnDone (a durable callback may hold the last reference to this
  // reactor and destroy it on the committer thread: nothing heavy may go down with it there).
  virtual void ReleaseState() {}

  // ---- services for the protocol (read path) -------------------------------------------------

  // The received message as one contiguous view: zero-copy when gRPC received it in one slice,
  // else one copy of the whole message. nullopt (after refusing with INTERNAL) if unreadable.
  std::optional<std::string_view> ReceivedBytes();
  // The slice ReceivedBytes() points into (valid until the next message).
  const grpc::Slice& received_slice() const { return read_slice_; }

  // Ends the RPC with `status` (once pending writes are out). Returns false (stop reading).
  bool Refuse(grpc::Status status);
  bool Refuse(grpc::StatusCode code, std::string message);
  // Refuse, `delay` from now (the RPC stays open meanwhile, reading nothing more).
  bool RefuseLater(grpc::Status status, std::chrono::milliseconds delay);

  // Stream setup, the same for every protocol (each refuses and returns false on failure):
  // the `authorization` header holds a valid token (unless no_auth)...
  bool CheckToken();
  // ...that grants `table` (sets table_key_), and stream creation is not blocked by a fault.
  bool CheckTableAccess(const std::string& table);

  // The stream is accepted: registers its stats (a new stream id) and logs it...
  std::shared_ptr<StreamStats> NewStats(const std::string& table, const std::string& record_type);
  // ...then marks it open, sends `first_write` (the protocol's "created"/"ready" answer) and
  // applies the faults that fire after 0 requests.
  void Opened(std::shared_ptr<StreamStats> stats, std::string first_write);

  // The request at `offset` (== next_offset_) holds `rows` (in the table's schema; null or empty
  // = nothing to store) received as `wire_bytes`: appends them, acknowledges them once durable,
  // applies request-count faults. Returns false when the RPC is ending (stop reading).
  bool Store(int64_t offset, std::shared_ptr<arrow::RecordBatch> rows, int64_t wire_bytes);

  const ServiceContext* svc_;
  grpc::GenericCallbackServerContext* ctx_;
  // Read path only.
  std::shared_ptr<Table> table_;
  std::string table_key_;  // lower-cased full name, for the faults

  std::mutex mu_;
  // Written under mu_ on the read path; the read path reads them without the lock.
  bool opened_ = false;
  int64_t next_offset_ = 0;  // the offset the next request must carry
  // Under mu_: the watermark acknowledged so far.
  int64_t acked_offset_ = -1;
  int64_t acked_rows_ = 0;

 private:
  struct PendingWrite {
    std::string bytes;
    bool ack = false;  // a plain ack: may be replaced by a newer one while waiting
    int64_t ack_offset = -1;
  };

  void OnDurable(int64_t offset, int64_t wire_bytes, arrow::Status st);
  void RefreshFaultsLocked();
  void ApplyRequestFaultsLocked();
  void EndAfterCloseSignal();
  void EvaluateAcksLocked();
  void QueueAckLocked();
  void OnTimer();
  void RequestFinishLocked(grpc::Status status);
  void Act(std::unique_lock<std::mutex>& lock);

  ZerobusService* service_;
  std::shared_ptr<IngestReactor> self_;

  // Read path only.
  grpc::ByteBuffer read_buffer_;
  grpc::Slice read_slice_;

  std::shared_ptr<StreamStats> stats_;  // set under mu_ (Act reads it), then read-only
  AckQueue acks_;
  StreamFaults faults_;
  uint64_t faults_version_ = 0;
  bool close_signal_sent_ = false;
  // partial_ack fault: the offset acknowledged only up to partial_rows_ of its rows (-1: none).
  int64_t partial_at_ = -1;
  int64_t partial_rows_ = 0;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point timer_at_{};
  bool read_closed_ = false;
  int64_t pending_bytes_ = 0;  // appended, not yet durable
  bool read_paused_ = false;
  std::deque<PendingWrite> pending_writes_;
  grpc::ByteBuffer current_write_;
  bool write_in_flight_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

}  // namespace arrow_zerobus::emulator
