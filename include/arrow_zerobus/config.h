// WrapperConfiguration: every option of the Python API contract (same names, same defaults) plus
// this project's additions (streams, in-flight limits, timeouts, record type, descriptor source,
// cool-downs). Loading from environment variables and YAML; validation that names the option.
// See docs/configuration.md for the full reference.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/status.h>
#include <google/protobuf/descriptor.pb.h>

#include "arrow_zerobus/secret.h"

namespace arrow_zerobus {

// The protocol's RecordType: how rows travel on the wire.
enum class RecordFormat : int8_t { kProto, kJson };
// How rows travel to Zerobus: the EphemeralStream RPC (rows as protobuf messages or JSON
// objects), or Arrow Flight DoPut (Arrow IPC record batches, no row encoding).
// (The transport option; record_type is its older spelling for the first two.)
enum class Transport : int8_t { kProtobuf, kJson, kArrowFlight };
// Arrow IPC body compression of the record batches sent over Arrow Flight.
enum class IpcCompression : int8_t { kNone, kLz4Frame, kZstd };
// Where the protobuf descriptor of the rows comes from.
enum class DescriptorSource : int8_t {
  kArrowSchema,   // generated from the batch's Arrow schema (type-mapping.md)
  kGiven,         // WrapperConfiguration::descriptor, bound to the Arrow schema by column name
  kUnityCatalog,  // the table's columns from the Unity Catalog tables API
};
// What send_batch does when the in-flight request or byte budget is used up.
enum class InFlightFullPolicy : int8_t { kBlock, kReject };
enum class LogLevel : int8_t { kTrace, kDebug, kInfo, kWarn, kError, kOff };

std::string_view RecordFormatName(RecordFormat v);          // "proto" / "json"
std::string_view TransportName(Transport v);  // "protobuf" / "json" / "arrow_flight"
std::string_view IpcCompressionName(IpcCompression v);      // "none" / "lz4_frame" / "zstd"
std::string_view DescriptorSourceName(DescriptorSource v);  // "arrow_schema" / "given" / ...
std::string_view InFlightFullPolicyName(InFlightFullPolicy v);  // "block" / "reject"
std::string_view LogLevelName(LogLevel v);                  // "trace" ... "off"
// Parsers accept the names above, case-insensitively; errors name `option` and the value.
arrow::Result<RecordFormat> ParseRecordFormat(std::string_view text, std::string_view option);
arrow::Result<Transport> ParseTransport(std::string_view text, std::string_view option);
arrow::Result<IpcCompression> ParseIpcCompression(std::string_view text, std::string_view option);
arrow::Result<DescriptorSource> ParseDescriptorSource(std::string_view text,
                                                      std::string_view option);
arrow::Result<InFlightFullPolicy> ParseInFlightFullPolicy(std::string_view text,
                                                          std::string_view option);
// Also accepts "warning" for kWarn.
arrow::Result<LogLevel> ParseLogLevel(std::string_view text, std::string_view option);

// The `observability_config` dict of the Python API.
struct ObservabilityConfig {
  // OTLP/HTTP base URL (…/v1/metrics and …/v1/traces are appended). None: the standard
  // OTEL_EXPORTER_OTLP_ENDPOINT variables decide; none of them either: no HTTP export.
  std::optional<std::string> endpoint;
  // When set, every export is also appended as one JSON line to otlp-metrics.jsonl /
  // otlp-traces.jsonl in this directory.
  std::optional<std::string> output_dir;
  int64_t write_interval_secs = 5;
  LogLevel log_level = LogLevel::kInfo;

  static ObservabilityConfig Defaults() { return ObservabilityConfig(); }
};

// A parsed endpoint. No scheme means https:// (zerobus-protocol.md section 2).
struct EndpointInfo {
  bool tls = true;
  std::string host;  // IPv6 literals without their brackets
  int port = 443;
  // "host:port" (or "[v6]:port"): the gRPC target.
  std::string target() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};
// Accepts "https://host[:port][/]", "http://host[:port][/]" and "host[:port]"; host may be a
// bracketed IPv6 literal ("http://[::1]:50051"). The error names
// `option` and shows the value.
arrow::Result<EndpointInfo> ParseEndpoint(std::string_view endpoint,
                                          std::string_view option = "endpoint");

// The parts of a table name: 1 to 3 dot-separated [A-Za-z0-9_]+ identifiers.
struct TableNameParts {
  std::string catalog;  // empty for names with fewer than three parts
  std::string schema;   // empty for one-part names
  std::string table;
};
arrow::Result<TableNameParts> ParseTableName(std::string_view table_name);

// The configuration of one ZerobusWrapper (one table). A plain value type: copy freely; not
// synchronized (do not mutate one instance from several threads at once).
struct WrapperConfiguration {
  // ---- the Python API contract (python-api.md), same names and defaults ----
  std::string endpoint;
  std::string table_name;
  std::optional<std::string> client_id;
  std::optional<SecretString> client_secret;
  std::optional<std::string> unity_catalog_url;
  bool observability_enabled = false;
  std::optional<ObservabilityConfig> observability_config;
  // Legacy switch: turns on both debug formats when neither switch below is given.
  bool debug_enabled = false;
  std::optional<bool> debug_arrow_enabled;
  std::optional<bool> debug_protobuf_enabled;
  std::optional<std::string> debug_output_dir;
  int64_t debug_flush_interval_secs = 5;
  // Bytes; a debug file is closed once it reaches this size.
  std::optional<int64_t> debug_max_file_size;
  // Per table and per format; none = keep all.
  std::optional<int64_t> debug_max_files_retained = 10;
  // Total attempts, the first included.
  int32_t retry_max_attempts = 5;
  int64_t retry_base_delay_ms = 100;
  int64_t retry_max_delay_ms = 30000;
  bool zerobus_writer_disabled = false;

  // ---- this project's additions ----
  // The time budget of one send (send_batch, and each batch of send_stream): its attempts, the
  // stream opens and recoveries, token fetches and the waits between them all draw from it.
  // When it runs out, the rows not acknowledged fail, with the attempts made and the last error.
  int64_t send_timeout_ms = 120'000;
  // Copies of one row that may go on the wire, the wrapper's attempts and its streams' replays
  // together; a row sent that often and still not acknowledged fails (in doubt).
  int32_t max_sends_per_row = 5;
  // Rows per debug file (Arrow and protobuf); a batch is split across files to honour it.
  std::optional<int64_t> debug_max_records_per_file;
  // Parallel gRPC streams to the table; batches are spread over them.
  int32_t streams_per_table = 1;
  // In-flight budget per stream (unacked requests and their bytes).
  int64_t max_inflight_requests = 1'000'000;
  int64_t max_inflight_bytes = 256LL * 1024 * 1024;
  InFlightFullPolicy when_inflight_full = InFlightFullPolicy::kBlock;
  // Timeouts (zerobus-protocol.md section 6 defaults).
  int64_t stream_open_timeout_ms = 15'000;   // one stream open / recovery attempt
  int64_t recovery_backoff_ms = 2'000;       // pause between recovery attempts
  int32_t recovery_retries = 4;              // recovery attempts after a broken stream
  int64_t flush_timeout_ms = 300'000;        // flush(): wait for every ack
  int64_t ack_timeout_ms = 60'000;           // no ack while requests are in flight
  // Appended to the user-agent header.
  std::optional<std::string> application_name;
  // PEM bundle of trusted roots for TLS; none = the system's.
  std::optional<std::string> ca_file;
  RecordFormat record_type = RecordFormat::kProto;
  // Wins over record_type when set (see Transport); kJson and record_type kJson agree.
  Transport transport = Transport::kProtobuf;
  // Arrow Flight only.
  IpcCompression ipc_compression = IpcCompression::kNone;
  DescriptorSource descriptor_source = DescriptorSource::kArrowSchema;
  // Required when descriptor_source is kGiven.
  std::optional<google::protobuf::DescriptorProto> descriptor;
  // Cool-down after a high failure rate: a batch with at least failure_rate_min_rows rows of
  // which more than failure_rate_threshold failed starts a cool-down of failure_cooldown_ms plus
  // a random 0..cooldown_jitter_ms, during which send_batch fails fast.
  double failure_rate_threshold = 0.01;
  int64_t failure_rate_min_rows = 100;
  int64_t failure_cooldown_ms = 30'000;
  int64_t cooldown_jitter_ms = 5'000;
  // Cool-down after a 6006 "pipeline creation is temporarily blocked" refusal (plus the same
  // random 0..cooldown_jitter_ms).
  int64_t pipeline_blocked_cooldown_ms = 30'000;

  static WrapperConfiguration Defaults() { return WrapperConfiguration(); }
  // The Python constructor's shape: endpoint and table name, everything else default.
  static WrapperConfiguration Make(std::string endpoint, std::string table_name);

  // Effective debug switches (the legacy debug_enabled applies when neither is given).
  bool arrow_debug_on() const;
  bool protobuf_debug_on() const;
  bool any_debug_on() const { return arrow_debug_on() || protobuf_debug_on(); }
  bool has_credentials() const { return client_id.has_value() || client_secret.has_value(); }
  // The transport in force: `transport`, except that record_type json (its older spelling) with
  // the default transport protobuf means kJson.
  Transport effective_transport() const {
    return transport == Transport::kProtobuf && record_type == RecordFormat::kJson ? Transport::kJson
                                                                                   : transport;
  }

  // The only check the constructor makes (python-api.md): debug_output_dir is required when a
  // debug format is on.
  arrow::Status ValidateDebugOutputDir() const;
  // Every rule (docs/configuration.md); ConfigurationError naming the option.
  arrow::Status Validate() const;
  // Validate() plus what the wrapper needs to reach Zerobus: a three-part
  // catalog.schema.table name unless the writer is disabled.
  arrow::Status ValidateForWrapper() const;

  // Readable dump of every option; client_secret shows as "***".
  std::string ToString() const;

  // Reads ZEROBUS_*, UNITY_CATALOG_URL, DEBUG_*, RETRY_*, OTLP_* (docs/configuration.md) over
  // the defaults. Unset variables keep defaults; malformed values are a ConfigurationError
  // naming the variable. Does not Validate().
  using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
  static arrow::Result<WrapperConfiguration> FromEnvironment();
  static arrow::Result<WrapperConfiguration> FromEnvironment(const EnvLookup& lookup);

  // YAML (docs/configuration.md). Unknown keys and malformed values are ConfigurationErrors
  // naming the key, the line and the bad value (never the secret's). Does not Validate().
  static arrow::Result<WrapperConfiguration> FromYamlString(std::string_view yaml,
                                                            std::string_view source = "<yaml>");
  static arrow::Result<WrapperConfiguration> FromYamlFile(const std::string& path);
};

std::ostream& operator<<(std::ostream& os, const WrapperConfiguration& config);

// Reads a file holding one serialized DescriptorProto (e.g. a debug .desc file).
arrow::Result<google::protobuf::DescriptorProto> ReadDescriptorFile(const std::string& path,
                                                                   std::string_view option);

}  // namespace arrow_zerobus
