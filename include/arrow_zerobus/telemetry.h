// Telemetry: metrics and one span per send_batch, kept in process (Snapshot()) and exported over
// OTLP/HTTP with JSON encoding (POST {endpoint}/v1/metrics and /v1/traces) by a background
// thread through libcurl. The exporter's own failures are counted and never reach the senders.
// See docs/telemetry.md for the metric names and attributes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "arrow_zerobus/config.h"

namespace arrow_zerobus {

struct TransmissionResult;

struct TelemetryOptions {
  // resource attribute service.name; OTEL_SERVICE_NAME overrides it when use_environment.
  std::string service_name = "arrow_zerobus";
  // attribute zerobus.table on every data point and span.
  std::string table_name;
  // OTLP/HTTP base URL ("http://collector:4318"); the signal paths are appended. Unset: the
  // OTEL_EXPORTER_OTLP_{METRICS,TRACES}_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT variables when
  // use_environment; otherwise nothing is sent over HTTP.
  std::optional<std::string> endpoint;
  bool use_environment = true;
  // When set, every export body is also appended as one line to otlp-metrics.jsonl /
  // otlp-traces.jsonl in this directory.
  std::optional<std::string> output_dir;
  std::chrono::milliseconds export_interval{5000};
  // Per HTTP request (connect included).
  std::chrono::milliseconds export_timeout{5000};
  // Spans waiting for the next export; beyond this they are dropped (and counted).
  int64_t max_queued_spans = 2048;
  // Explicit bucket bounds of the send latency histogram, in milliseconds, ascending.
  std::vector<double> latency_bounds_ms = {1,   2,   5,    10,   25,   50,    100,
                                           250, 500, 1000, 2500, 5000, 10000, 30000};
  // Export failures are reported on stderr at kWarn (once until the next success).
  LogLevel log_level = LogLevel::kInfo;

  static TelemetryOptions Defaults() { return TelemetryOptions(); }
  // observability_config of a configuration (endpoint, output_dir, write_interval_secs,
  // log_level) and its table name.
  static TelemetryOptions FromConfig(const WrapperConfiguration& config);
};

struct LatencyHistogram {
  std::vector<double> bounds_ms;
  std::vector<int64_t> bucket_counts;  // bounds_ms.size() + 1 buckets
  int64_t count = 0;
  double sum_ms = 0;
  double min_ms = 0;  // meaningful when count > 0
  double max_ms = 0;
};

// Cumulative since Start().
struct TelemetrySnapshot {
  int64_t batches = 0;
  int64_t batches_failed = 0;  // no row delivered (whole-batch failures)
  int64_t rows = 0;
  int64_t rows_successful = 0;
  int64_t rows_failed = 0;
  std::map<std::string, int64_t> rows_failed_by_kind;  // "ConversionError" -> rows
  int64_t bytes = 0;
  int64_t retries = 0;           // attempts beyond the first
  int64_t replayed_records = 0;  // records sent again after a stream recovery
  int64_t in_flight_requests = 0;
  int64_t in_flight_bytes = 0;
  LatencyHistogram latency;
  int64_t spans_recorded = 0;
  int64_t spans_exported = 0;
  int64_t spans_dropped = 0;  // queue full, or their export failed
  int64_t exports_succeeded = 0;
  int64_t export_failures = 0;
  std::optional<std::string> last_export_error;
};

// Thread-safe: every method may be called from any thread. Recording takes a short lock and never
// waits for the network; exports run on the background thread (or in ExportNow()).
class Telemetry {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Starts the background exporter when there is an HTTP endpoint or an output_dir.
  // Invalid options (interval, bounds, endpoint scheme) are ConfigurationErrors.
  static arrow::Result<std::unique_ptr<Telemetry>> Start(TelemetryOptions options);
  ~Telemetry();  // Shutdown()

  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // One send_batch: counts rows, bytes, failures by kind, retries (attempts - 1), replays and
  // latency (result.latency_ms, else end - start), and queues a span from start to end.
  void RecordSend(const TransmissionResult& result, TimePoint start, TimePoint end,
                  int64_t replayed_records = 0);
  // The current in-flight requests and bytes (a gauge).
  void SetInFlight(int64_t requests, int64_t bytes);

  TelemetrySnapshot Snapshot() const;

  // Exports now, on the calling thread: metrics, then the queued spans. Returns the first export
  // error (also counted in the snapshot). OK when there is nowhere to export to.
  arrow::Status ExportNow();
  // Stops the background thread after one last export. Idempotent; recording still works after.
  void Shutdown();

  // The URLs exports go to (none when HTTP export is off).
  const std::optional<std::string>& metrics_url() const;
  const std::optional<std::string>& traces_url() const;

 private:
  struct Impl;
  explicit Telemetry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace arrow_zerobus
