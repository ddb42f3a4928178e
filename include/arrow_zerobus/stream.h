// One Zerobus stream: the gRPC EphemeralStream RPC with request offsets, cumulative durable acks,
// flow control, and recovery (reopen + replay of everything unacked) across RPCs.
//
// A ZerobusStream is the logical stream the caller sees; underneath, one RPC after another
// carries it (a new one after every recoverable failure or close signal). Requests are numbered
// by the stream (`seq` 0, 1, 2, ... for its whole life); each RPC numbers them again on the wire
// from offset 0, which is the protocol's offset_id.
//
// Delivery is at-least-once: a request whose RPC broke before its ack is sent again on the next
// RPC, so its rows may be stored twice. StreamStats counts what was replayed.
//
// Thread-safety: every method is thread-safe. Requests from concurrent Ingest* calls go on the
// wire in the order the calls were admitted. Completion callbacks attached to the returned
// futures run on the stream's own worker thread: keep them short. Close() and Flush() called
// from such a callback fail (they would wait on the thread that runs them), and an Ingest* from a
// callback never blocks (it fails when the stream is full).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/util/future.h>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/config.h"
#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {

namespace internal {
struct FlightPiece;
}

enum class RecordType : int8_t {
  kProto = 1,  // rows are serialized messages of the stream's descriptor
  kJson = 2,   // rows are JSON objects (text)
  kArrow = 3,  // Arrow Flight DoPut: Arrow IPC record batches (not a protocol RecordType)
};

// What Ingest* does when the in-flight limits are reached.
enum class FullPolicy : int8_t {
  kBlock,   // wait for acks to free room (up to StreamOptions::block_timeout)
  kReject,  // fail at once with a retryable Transmission error; nothing is queued
};

struct StreamOptions {
  // "https://<workspace>.zerobus.<region>.cloud.databricks.com[:port]"; no scheme means https.
  // "http://host:port" is plaintext h2c, for local servers only.
  std::string endpoint;
  // catalog.schema.table
  std::string table_name;
  RecordType record_type = RecordType::kProto;
  // The rows' message type (required for kProto, unused for kJson and kArrow).
  std::optional<DescriptorProto> descriptor;
  // kArrow: the schema sent when each DoPut opens; every ingested batch must have exactly it.
  std::shared_ptr<arrow::Schema> arrow_schema;
  // kArrow: IPC body compression of the record batches.
  IpcCompression ipc_compression = IpcCompression::kNone;
  // kArrow: target size of one FlightData message; a batch is split into pieces of
  // ceil(size / this) even row counts (the vendor clients' rule).
  int64_t flight_piece_bytes = 2 * 1024 * 1024;
  // Opening metadata (OAuth: MakeOAuthHeadersProvider). Required.
  std::shared_ptr<HeadersProvider> headers_provider;

  // Appended to the user-agent: "arrow-zerobus/<version> <application_name>".
  std::string application_name;
  // PEM bundle trusted instead of the system roots (https only).
  std::string ca_file;

  // In-flight limits: requests admitted and not yet acked (queued or on the wire). A single
  // request larger than max_inflight_bytes is admitted when nothing else is in flight.
  int64_t max_inflight_requests = 1'000'000;
  int64_t max_inflight_bytes = 256LL * 1024 * 1024;
  FullPolicy when_full = FullPolicy::kBlock;
  // Longest an Ingest* call blocks for room.
  std::chrono::milliseconds block_timeout{300'000};

  // Reopen and replay after a retryable failure. Off: the first failure is final.
  bool recovery = true;
  // One open attempt: from starting the RPC to the server's create_stream_response.
  std::chrono::milliseconds recovery_timeout{15'000};
  // Wait before a reopen: recovery_backoff * 2^(n-1) for the n-th consecutive failure, capped
  // at recovery_backoff_max, each with jitter (50-100 %).
  std::chrono::milliseconds recovery_backoff{2'000};
  std::chrono::milliseconds recovery_backoff_max{30'000};
  // Consecutive failed attempts allowed after the first (an ack resets the count).
  int recovery_retries = 4;
  // While requests are on the wire, no ack for this long breaks the RPC (retryable).
  std::chrono::milliseconds server_lack_of_ack_timeout{60'000};
  // Flush() without an explicit timeout, and the flush inside Close().
  std::chrono::milliseconds flush_timeout{300'000};
  // Cap on the wait after a CloseStreamSignal before switching RPCs (none: the server's
  // duration).
  std::optional<std::chrono::milliseconds> stream_paused_max_wait;
  // The time budget of Open: every open attempt, the headers provider's token fetches and the
  // waits between them end by this time (none: recovery_retries alone bounds them). Applies
  // until the first RPC is open; after that each request's own RequestLimits::deadline does.
  std::chrono::steady_clock::time_point open_deadline = std::chrono::steady_clock::time_point::max();

  // Encode each request's framing by hand and send the row bytes as gRPC slices over the
  // caller's buffer (no copy). false builds EphemeralStreamRequest messages with the generated
  // protobuf classes instead (one copy per row): kept to measure against (bench_e2e).
  bool zero_copy = true;

  static StreamOptions Defaults() { return StreamOptions(); }
  // Configuration error naming the first bad option.
  arrow::Status Validate() const;
};

// What the operation that sends a request allows it (ZerobusWrapper: its send's time budget and
// the copies of a row it may still put on the wire).
struct RequestLimits {
  // While this request is the oldest unacknowledged one, the stream waits for its ack, reopens
  // and backs off only until then; past it the stream fails (retryable), naming the budget, so
  // that the caller decides what to do with what was not acknowledged.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Times the request may go on the wire (0: no limit). A reopen that would send it once more
  // fails the stream instead (retryable: the other requests may still be sent elsewhere).
  int32_t max_sends = 0;
};

// What a durable request reports.
struct IngestAck {
  int64_t seq = 0;          // the request's number in this stream (0, 1, 2, ...)
  int64_t num_records = 0;
  int64_t bytes = 0;        // record bytes with their framing
  int32_t sends = 1;        // times it went on the wire (> 1: replayed)
};

// A request that was not acked when the stream failed or was aborted: taken back with
// TakeUnacked() so the caller can send it again elsewhere.
struct UnackedRequest {
  int64_t seq = 0;
  bool batch = true;  // batch request (framed records) or a single record
  int64_t num_records = 0;
  std::shared_ptr<arrow::Buffer> owner;  // keeps `bytes` alive
  std::string_view bytes;                // framed records (batch) or the record
  int32_t sends = 0;
  // kArrow (empty owner and bytes): the piece's rows that were not acked, and how many rows at
  // its front were (num_records counts only the unacked ones).
  std::shared_ptr<arrow::RecordBatch> rows;
  int64_t acked_rows = 0;
};

enum class StreamState : int8_t {
  kOpen,        // an RPC is open and requests flow
  kPaused,      // the server sent CloseStreamSignal: no new sends until the next RPC
  kRecovering,  // between RPCs (backoff or reopening); requests are queued
  kClosed,      // Close() finished
  kFailed,      // final failure or Abort(); see final_status()
};
std::string_view StreamStateName(StreamState state);

struct StreamStats {
  int64_t requests_admitted = 0;
  int64_t requests_acked = 0;
  int64_t records_acked = 0;
  int64_t bytes_acked = 0;
  int64_t requests_failed = 0;
  // Wire writes of ingest requests, replays included.
  int64_t requests_sent = 0;
  int64_t bytes_sent = 0;
  // Requests (and their records) sent again on a later RPC.
  int64_t requests_replayed = 0;
  int64_t records_replayed = 0;
  // RPCs opened successfully (the first included).
  int64_t rpcs_opened = 0;
  // Open attempts or open RPCs that failed.
  int64_t rpc_failures = 0;
  int64_t close_signals = 0;
  int64_t inflight_requests = 0;
  int64_t inflight_bytes = 0;
  // The server's id of the current (or last) RPC's stream.
  std::string stream_id;
};

class ZerobusStream {
 public:
  // Opens the first RPC and waits for the server's create_stream_response (retrying as the
  // recovery options say). Errors: Configuration for bad options; Authentication, Connection,
  // TokenRefresh or Transmission for a refused or failed open.
  static arrow::Result<std::unique_ptr<ZerobusStream>> Open(StreamOptions options);

  // Aborts the stream if it is still open (pending futures fail).
  ~ZerobusStream();
  ZerobusStream(const ZerobusStream&) = delete;
  ZerobusStream& operator=(const ZerobusStream&) = delete;

  // One batch request of `num_records` framed records: the bytes of a ProtoEncodedRecordBatch
  // (or JsonRecordBatch) body, i.e. entries `0x0A <varint length> <record>`. `owner` keeps them
  // alive until the request is acked or taken back. The framing is checked.
  arrow::Result<arrow::Future<IngestAck>> IngestFramedBatch(std::shared_ptr<arrow::Buffer> owner,
                                                            std::string_view framed,
                                                            int64_t num_records);
  // One chunk of an encoder's output (trusted: its framing is not re-checked).
  arrow::Result<arrow::Future<IngestAck>> IngestChunk(const EncodedBatch& batch,
                                                      RecordRange range,
                                                      RequestLimits limits = {});
  // Every chunk of `batch`, in order: one future per chunk, always. A chunk that cannot be
  // admitted (stream failed or closed, full with kReject, block_timeout) gets a future already
  // finished with that error, and so does every chunk after it (they are not sent, so the
  // order of what is sent is kept).
  std::vector<arrow::Future<IngestAck>> IngestEncodedBatch(const EncodedBatch& batch);
  // One record as a single ingest_record request (serialized message, or JSON text).
  arrow::Result<arrow::Future<IngestAck>> IngestRecord(std::shared_ptr<arrow::Buffer> owner,
                                                       std::string_view record);
  arrow::Result<arrow::Future<IngestAck>> IngestRecord(std::string record);

  // kArrow only: `batch` (schema equal to StreamOptions::arrow_schema) split into IPC pieces of
  // about flight_piece_bytes, one request per piece, in order. Same admission rules as
  // IngestEncodedBatch: one future per piece, a piece that cannot be admitted gets a finished
  // error future and so does every piece after it. `range` is the piece's rows in `batch`.
  struct ArrowPiece {
    RecordRange range;
    arrow::Future<IngestAck> ack;
    int64_t seq = -1;  // the request's number (UnackedRequest::seq); -1 when not admitted
  };
  std::vector<ArrowPiece> IngestArrowBatch(std::shared_ptr<arrow::RecordBatch> batch,
                                           RequestLimits limits = {});

  // Waits until every request admitted before the call is acked (and its future finished).
  // Transmission error (retryable) on timeout; the stream's final error if it failed.
  arrow::Status Flush();
  arrow::Status Flush(std::chrono::milliseconds timeout);

  // Flush (flush_timeout), half-close, and drain the server's last responses. If the flush
  // fails, what is unacked fails with that error and can be taken back. Idempotent.
  arrow::Status Close();
  // Cancels the RPC and fails every pending request (Transmission, not retryable). Idempotent;
  // nothing happens after Close() or a final failure.
  void Abort();

  // After a final failure or Abort(): the requests that were never acked, in order. Each one is
  // returned once.
  std::vector<UnackedRequest> TakeUnacked();

  StreamState state() const;
  // OK while the stream is usable or after Close(); the error that ended it otherwise.
  arrow::Status final_status() const;
  StreamStats stats() const;
  const StreamOptions& options() const;

  struct Core;  // the shared state (transport internals)

 private:
  explicit ZerobusStream(std::shared_ptr<Core> core);
  arrow::Result<arrow::Future<IngestAck>> Admit(
      std::shared_ptr<arrow::Buffer> owner, std::string_view bytes, int64_t num_records,
      bool batch, RequestLimits limits = {},
      std::shared_ptr<const internal::FlightPiece> piece = nullptr, int64_t* seq = nullptr);
  std::shared_ptr<Core> core_;
};

}  // namespace arrow_zerobus
