// ZerobusWrapper: the product API. Send an Arrow RecordBatch to one Zerobus table and get back
// exactly which rows landed (TransmissionResult), with retries of what was not acknowledged,
// per-wrapper cool-downs, debug files and telemetry. See docs/wrapper.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/debug.h"
#include "arrow_zerobus/result.h"
#include "arrow_zerobus/schema.h"
#include "arrow_zerobus/stream.h"
#include "arrow_zerobus/telemetry.h"

namespace arrow_zerobus {

// One stream slot of the wrapper (streams_per_table slots per descriptor).
struct WrapperStreamStats {
  int32_t slot = 0;
  bool open = false;  // a stream currently sits in the slot
  StreamState state = StreamState::kClosed;
  // Bytes of encoded records the wrapper handed to this slot and is still waiting for.
  int64_t inflight_bytes = 0;
  // Batch requests this slot's streams acknowledged, over every stream it held.
  int64_t requests_acked = 0;
  int64_t records_acked = 0;
  StreamStats current;  // the stream in the slot now (zeros when none)
};

// Cumulative since Make(). Counters are kept by the wrapper; `streams` is read live.
struct WrapperStats {
  int64_t batches = 0;
  int64_t rows = 0;
  int64_t rows_successful = 0;
  int64_t rows_failed = 0;
  // Of the failed rows, those in doubt: sent, not acknowledged before their stream ended (they
  // may be in the table).
  int64_t rows_in_doubt = 0;
  // Encoded record bytes handed to streams (each attempt counts).
  int64_t bytes_sent = 0;
  // Attempts beyond the first, over all batches.
  int64_t retries = 0;
  // Rows the wrapper sent again on a fresh stream after their stream failed finally.
  int64_t rows_retried = 0;
  // Records that went on the wire again after having been on the wire already: the streams'
  // own replays after recovery plus the wrapper's re-sends of rows whose request had been sent.
  // At-least-once delivery: the table may hold up to this many duplicates.
  int64_t replayed_records = 0;
  // Row copies that went on the wire (each send of each row, first sends included), and rows
  // sent more than once (max_sends_per_row bounds the copies of one row).
  int64_t wire_copies = 0;
  int64_t rows_sent_more_than_once = 0;
  int64_t streams_opened = 0;
  int64_t stream_open_failures = 0;
  // Streams that ended in a final failure and were replaced.
  int64_t streams_failed = 0;
  // Stream pools (one per descriptor) closed because no cached encoder used them any more.
  int64_t pools_evicted = 0;
  int64_t cooldowns_started = 0;
  // Batches refused at once because a cool-down was in force.
  int64_t batches_refused_in_cooldown = 0;
  // Debug output errors (a failing debug directory never fails a send unless the writer is
  // disabled, where the debug files are the output).
  int64_t debug_write_failures = 0;
  std::optional<std::string> last_debug_error;
  std::vector<WrapperStreamStats> streams;
};

// A cool-down in force: send_batch fails fast until it ends.
struct CooldownInfo {
  std::string reason;
  std::chrono::milliseconds remaining{0};
};

// Sends Arrow batches to one Zerobus table.
//
// A copyable handle: copies share one wrapper (streams, caches, counters); the last copy to go
// away shuts it down. Thread-safety: every method may be called from any thread at any time;
// concurrent SendBatch calls pipeline on the streams (no lock is held while waiting for acks).
//
// Streams open lazily on the first send: with DescriptorSource::kArrowSchema the descriptor is
// generated from each batch's schema (batches whose schemas give different descriptors use
// different streams); with kGiven or kUnityCatalog one descriptor is used and each batch schema
// is bound to it by column name. Encoders are cached per schema.
class ZerobusWrapper {
 public:
  // Validates the configuration (ValidateForWrapper: ConfigurationError naming the option),
  // builds the OAuth headers provider (no network yet), opens the debug writer and starts the
  // telemetry when configured.
  static arrow::Result<ZerobusWrapper> Make(WrapperConfiguration config);
  // The same with a caller-supplied headers provider (a pre-obtained token, a proxy's headers,
  // none for a local server without auth) instead of OAuth: client_id and client_secret are then
  // not needed and must not be given; unity_catalog_url only for the Unity Catalog descriptor
  // source (the provider's headers also authorize that request).
  static arrow::Result<ZerobusWrapper> Make(WrapperConfiguration config,
                                            std::shared_ptr<HeadersProvider> headers_provider);

  // Converts and sends `batch`, waits until every row is acknowledged or has failed finally,
  // and reports each row (successful + failed == total, always). Delivery failures come back in
  // the result; a failed Status only for misuse (after Shutdown()).
  //
  // Retries: the rows of requests that were not acknowledged when their stream failed finally
  // are sent again on a fresh stream, up to retry_max_attempts attempts in all, with
  // exponential backoff and full jitter, only for retryable errors; then they fail with
  // "Retry exhausted: ...". Acknowledged rows are never sent again by the wrapper.
  arrow::Result<TransmissionResult> SendBatch(const arrow::RecordBatch& batch);

  // The same, without waiting: converts the batch and hands its requests to the streams on the
  // calling thread (blocking there only when the in-flight budget is full and the policy is
  // kBlock), then returns a future of the result. The future completes on a library thread (a
  // stream's worker when the acks arrive, or the retry executor); callbacks attached to it must
  // be short and must not call Flush or Shutdown. Many sends may be pending at once; nothing
  // waits on a thread per send. A failed Result only for misuse (after Shutdown()).
  //
  // With `caller_may_block` false (an event loop's thread), the requests are handed to the
  // streams from an I/O thread instead, so a full in-flight budget never blocks the caller; the
  // caller then bounds its own pending sends (e.g. by awaiting them).
  arrow::Result<arrow::Future<TransmissionResult>> SendBatchAsync(
      const arrow::RecordBatch& batch, bool caller_may_block = true);

  // Reads `reader` to its end and sends each batch as it comes (pipelined, as SendBatchAsync),
  // with one combined result whose row indices count from the start of the stream. A read
  // error stops reading: the rows read so far are sent and accounted for, and the combined
  // result's `error` names the read error and the row where reading stopped.
  arrow::Result<arrow::Future<TransmissionResult>> SendStreamAsync(
      arrow::RecordBatchReader& reader, bool caller_may_block = true);

  // Waits until everything sent so far is acknowledged on every stream, and flushes the debug
  // files. The first error is returned.
  arrow::Status Flush();

  // Stops new sends (later SendBatch calls fail), waits for sends in progress, flushes and closes
  // every stream, closes the debug writer and makes a last telemetry export. Idempotent: later
  // calls return the first call's status.
  arrow::Status Shutdown();
  bool is_shutdown() const;

  // The cool-down in force, if any.
  std::optional<CooldownInfo> cooldown() const;

  WrapperStats stats() const;
  // The telemetry snapshot (nullopt when observability is off).
  std::optional<TelemetrySnapshot> telemetry() const;
  const WrapperConfiguration& config() const;

  // The descriptor rows of `schema` are sent with (generated, given or from Unity Catalog).
  // With kUnityCatalog this may fetch the table (network).
  arrow::Result<DescriptorProto> DescriptorFor(const std::shared_ptr<arrow::Schema>& schema);

  struct Impl;

 private:
  explicit ZerobusWrapper(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// ---- Unity Catalog ---------------------------------------------------------------------------

// Parses a Unity Catalog / Delta type text ("bigint", "decimal(10,2)", "array<string>",
// "map<string,int>", "struct<a:int NOT NULL,b:string>", case-insensitive) as the Arrow type the
// rows would have in that column (the emulator's table model): tinyint int8, smallint int16,
// int int32, bigint int64, float, double, boolean, string/varchar/char utf8, binary, date
// date32, timestamp timestamp[us, UTC], timestamp_ntz timestamp[us], decimal(p,s)
// decimal128, variant utf8 (JSON text). Conversion error naming the text and position.
// Same as ParseDeltaTypeText (delta_types.h) with default options.
arrow::Result<std::shared_ptr<arrow::DataType>> ArrowTypeFromTypeText(std::string_view type_text);

// The Arrow schema of a Unity Catalog table from the JSON of
// GET /api/2.1/unity-catalog/tables/{name}: `columns[]` ordered by `position`, each column's
// `type_text` and `nullable`. Errors name the column.
arrow::Result<std::shared_ptr<arrow::Schema>> ArrowSchemaFromUnityCatalogTable(
    std::string_view table_json);

struct UnityCatalogOptions {
  std::string unity_catalog_url;  // https://workspace (or http:// for a local server)
  std::string table_name;         // catalog.schema.table
  // Supplies `authorization: Bearer ...` (e.g. MakeOAuthHeadersProvider).
  std::shared_ptr<HeadersProvider> headers_provider;
  std::chrono::milliseconds timeout{30'000};
  std::string ca_file;
  static UnityCatalogOptions Defaults() { return UnityCatalogOptions(); }
};

// GET {unity_catalog_url}/api/2.1/unity-catalog/tables/{table_name} and map the columns to the
// descriptor Zerobus expects for the table (fields numbered position + 1, NOT NULL columns
// required). 401/403: Authentication error; 404: Configuration error naming the table; other
// failures: Connection error (retryable).
arrow::Result<DescriptorProto> FetchUnityCatalogDescriptor(const UnityCatalogOptions& options);

}  // namespace arrow_zerobus
