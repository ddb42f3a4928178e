// The table of loadable options shared by the environment and YAML loaders, so both always
// know the same options (docs/configuration.md lists them).
#include "arrow_zerobus/errors.h"
#include "config/config_internal.h"

namespace arrow_zerobus::config_internal {

namespace {

ObservabilityConfig& Obs(WrapperConfiguration& c) {
  if (!c.observability_config) c.observability_config = ObservabilityConfig::Defaults();
  return *c.observability_config;
}

// "none" / "null" / "" mean "keep all" for the retention count.
bool IsNone(const std::string& v) {
  const std::string l = ToLower(v);
  return l.empty() || l == "none" || l == "null";
}

}  // namespace

#define AZ_SET(expr)                                                                         \
  [](WrapperConfiguration& c, const std::string& v, const std::string& w) -> arrow::Status { \
    (void)w;                                                                                 \
    expr;                                                                                    \
    return arrow::Status::OK();                                                              \
  }
#define AZ_STR(field) AZ_SET(c.field = v)
#define AZ_PARSED(field, parser) AZ_SET(ARROW_ASSIGN_OR_RAISE(c.field, parser(v, w)))
#define AZ_RESET(field) [](WrapperConfiguration& c) { c.field.reset(); }

const std::vector<OptionSpec>& OptionSpecs() {
  static const std::vector<OptionSpec> kSpecs = {
      {"ZEROBUS_ENDPOINT", "", "zerobus_endpoint", AZ_STR(endpoint), nullptr},
      {"ZEROBUS_TABLE_NAME", "", "table_name", AZ_STR(table_name), nullptr},
      {"UNITY_CATALOG_URL", "", "unity_catalog_url", AZ_STR(unity_catalog_url),
       AZ_RESET(unity_catalog_url)},
      {"ZEROBUS_CLIENT_ID", "", "client_id", AZ_STR(client_id), AZ_RESET(client_id)},
      {"ZEROBUS_CLIENT_SECRET", "", "client_secret", AZ_SET(c.client_secret = SecretString(v)),
       AZ_RESET(client_secret)},
      {"ZEROBUS_WRITER_DISABLED", "", "zerobus_writer_disabled",
       AZ_PARSED(zerobus_writer_disabled, ParseBool), nullptr},
      // observability
      {"OTLP_ENABLED", "observability", "enabled", AZ_PARSED(observability_enabled, ParseBool),
       nullptr},
      {"OTLP_ENDPOINT", "observability", "endpoint", AZ_SET(Obs(c).endpoint = v),
       [](WrapperConfiguration& c) { Obs(c).endpoint.reset(); }},
      {"OTLP_OUTPUT_DIR", "observability", "output_dir", AZ_SET(Obs(c).output_dir = v),
       [](WrapperConfiguration& c) { Obs(c).output_dir.reset(); }},
      {"OTLP_WRITE_INTERVAL_SECS", "observability", "write_interval_secs",
       AZ_SET(ARROW_ASSIGN_OR_RAISE(Obs(c).write_interval_secs, ParseInt64(v, w))), nullptr},
      {"OTLP_LOG_LEVEL", "observability", "log_level",
       AZ_SET(ARROW_ASSIGN_OR_RAISE(Obs(c).log_level, ParseLogLevel(v, w))), nullptr},
      // debug
      {"DEBUG_ENABLED", "debug", "enabled", AZ_PARSED(debug_enabled, ParseBool), nullptr},
      {"DEBUG_ARROW_ENABLED", "debug", "arrow_enabled", AZ_PARSED(debug_arrow_enabled, ParseBool),
       AZ_RESET(debug_arrow_enabled)},
      {"DEBUG_PROTOBUF_ENABLED", "debug", "protobuf_enabled",
       AZ_PARSED(debug_protobuf_enabled, ParseBool), AZ_RESET(debug_protobuf_enabled)},
      {"DEBUG_OUTPUT_DIR", "debug", "output_dir", AZ_STR(debug_output_dir),
       AZ_RESET(debug_output_dir)},
      {"DEBUG_FLUSH_INTERVAL_SECS", "debug", "flush_interval_secs",
       AZ_PARSED(debug_flush_interval_secs, ParseInt64), nullptr},
      {"DEBUG_MAX_FILE_SIZE", "debug", "max_file_size", AZ_PARSED(debug_max_file_size, ParseInt64),
       AZ_RESET(debug_max_file_size)},
      {"DEBUG_MAX_FILES_RETAINED", "debug", "max_files_retained",
       AZ_SET(if (IsNone(v)) c.debug_max_files_retained.reset();
              else { ARROW_ASSIGN_OR_RAISE(c.debug_max_files_retained, ParseInt64(v, w)); }),
       AZ_RESET(debug_max_files_retained)},
      {"DEBUG_MAX_RECORDS_PER_FILE", "debug", "max_records_per_file",
       AZ_PARSED(debug_max_records_per_file, ParseInt64), AZ_RESET(debug_max_records_per_file)},
      // retry
      {"RETRY_MAX_ATTEMPTS", "retry", "max_attempts", AZ_PARSED(retry_max_attempts, ParseInt32),
       nullptr},
      {"RETRY_BASE_DELAY_MS", "retry", "base_delay_ms", AZ_PARSED(retry_base_delay_ms, ParseInt64),
       nullptr},
      {"RETRY_MAX_DELAY_MS", "retry", "max_delay_ms", AZ_PARSED(retry_max_delay_ms, ParseInt64),
       nullptr},
      {"ZEROBUS_SEND_TIMEOUT_MS", "retry", "send_timeout_ms",
       AZ_PARSED(send_timeout_ms, ParseInt64), nullptr},
      {"ZEROBUS_MAX_SENDS_PER_ROW", "retry", "max_sends_per_row",
       AZ_PARSED(max_sends_per_row, ParseInt32), nullptr},
      // stream (this project's additions)
      {"ZEROBUS_STREAMS_PER_TABLE", "stream", "streams_per_table",
       AZ_PARSED(streams_per_table, ParseInt32), nullptr},
      {"ZEROBUS_MAX_INFLIGHT_REQUESTS", "stream", "max_inflight_requests",
       AZ_PARSED(max_inflight_requests, ParseInt64), nullptr},
      {"ZEROBUS_MAX_INFLIGHT_BYTES", "stream", "max_inflight_bytes",
       AZ_PARSED(max_inflight_bytes, ParseInt64), nullptr},
      {"ZEROBUS_WHEN_INFLIGHT_FULL", "stream", "when_inflight_full",
       AZ_PARSED(when_inflight_full, ParseInFlightFullPolicy), nullptr},
      {"ZEROBUS_STREAM_OPEN_TIMEOUT_MS", "stream", "open_timeout_ms",
       AZ_PARSED(stream_open_timeout_ms, ParseInt64), nullptr},
      {"ZEROBUS_RECOVERY_BACKOFF_MS", "stream", "recovery_backoff_ms",
       AZ_PARSED(recovery_backoff_ms, ParseInt64), nullptr},
      {"ZEROBUS_RECOVERY_RETRIES", "stream", "recovery_retries",
       AZ_PARSED(recovery_retries, ParseInt32), nullptr},
      {"ZEROBUS_FLUSH_TIMEOUT_MS", "stream", "flush_timeout_ms",
       AZ_PARSED(flush_timeout_ms, ParseInt64), nullptr},
      {"ZEROBUS_ACK_TIMEOUT_MS", "stream", "ack_timeout_ms", AZ_PARSED(ack_timeout_ms, ParseInt64),
       nullptr},
      {"ZEROBUS_APPLICATION_NAME", "stream", "application_name", AZ_STR(application_name),
       AZ_RESET(application_name)},
      {"ZEROBUS_CA_FILE", "stream", "ca_file", AZ_STR(ca_file), AZ_RESET(ca_file)},
      {"ZEROBUS_RECORD_TYPE", "stream", "record_type", AZ_PARSED(record_type, ParseRecordFormat),
       nullptr},
      {"ZEROBUS_TRANSPORT", "stream", "transport", AZ_PARSED(transport, ParseTransport), nullptr},
      {"ZEROBUS_IPC_COMPRESSION", "stream", "ipc_compression",
       AZ_PARSED(ipc_compression, ParseIpcCompression), nullptr},
      {"ZEROBUS_DESCRIPTOR_SOURCE", "stream", "descriptor_source",
       AZ_PARSED(descriptor_source, ParseDescriptorSource), nullptr},
      {"ZEROBUS_DESCRIPTOR_FILE", "stream", "descriptor_file",
       AZ_PARSED(descriptor, ReadDescriptorFile), AZ_RESET(descriptor)},
      // cool-downs
      {"ZEROBUS_FAILURE_RATE_THRESHOLD", "cooldown", "failure_rate_threshold",
       AZ_PARSED(failure_rate_threshold, ParseDouble), nullptr},
      {"ZEROBUS_FAILURE_RATE_MIN_ROWS", "cooldown", "failure_rate_min_rows",
       AZ_PARSED(failure_rate_min_rows, ParseInt64), nullptr},
      {"ZEROBUS_FAILURE_COOLDOWN_MS", "cooldown", "failure_cooldown_ms",
       AZ_PARSED(failure_cooldown_ms, ParseInt64), nullptr},
      {"ZEROBUS_COOLDOWN_JITTER_MS", "cooldown", "jitter_ms",
       AZ_PARSED(cooldown_jitter_ms, ParseInt64), nullptr},
      {"ZEROBUS_PIPELINE_BLOCKED_COOLDOWN_MS", "cooldown", "pipeline_blocked_cooldown_ms",
       AZ_PARSED(pipeline_blocked_cooldown_ms, ParseInt64), nullptr},
  };
  return kSpecs;
}

#undef AZ_SET
#undef AZ_STR
#undef AZ_PARSED
#undef AZ_RESET

}  // namespace arrow_zerobus::config_internal
