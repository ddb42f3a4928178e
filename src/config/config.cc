#include "arrow_zerobus/config.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "arrow_zerobus/errors.h"
#include "common/endpoint.h"
#include "common/http_client.h"
#include "config/config_internal.h"

namespace arrow_zerobus {

// ---------------------------------------------------------------------------------------------
// Parsing helpers

namespace config_internal {

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Quote(std::string_view value) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  if (value.size() > kMax) {
    out.append(value.substr(0, kMax));
    out += "...";
  } else {
    out.append(value);
  }
  out += "'";
  return out;
}

namespace {
std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
}  // namespace

arrow::Result<bool> ParseBool(std::string_view text, std::string_view where) {
  const std::string v = ToLower(Trim(text));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return ConfigurationError(std::string(where) + ": " + Quote(text) +
                            " is not a boolean (true/false, 1/0, yes/no, on/off)");
}

arrow::Result<int64_t> ParseInt64(std::string_view text, std::string_view where) {
  const std::string_view t = Trim(text);
  int64_t value = 0;
  const char* begin = t.data();
  const char* end = t.data() + t.size();
  if (!t.empty() && *begin == '+') ++begin;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (t.empty() || ec != std::errc() || ptr != end) {
    const char* why = ec == std::errc::result_out_of_range ? " is out of range for a 64-bit integer"
                                                          : " is not an integer";
    return ConfigurationError(std::string(where) + ": " + Quote(text) + why);
  }
  return value;
}

arrow::Result<int32_t> ParseInt32(std::string_view text, std::string_view where) {
  ARROW_ASSIGN_OR_RAISE(const int64_t v, ParseInt64(text, where));
  if (v < INT32_MIN || v > INT32_MAX) {
    return ConfigurationError(std::string(where) + ": " + Quote(text) +
                              " is out of range for a 32-bit integer");
  }
  return static_cast<int32_t>(v);
}

arrow::Result<double> ParseDouble(std::string_view text, std::string_view where) {
  const std::string t(Trim(text));
  char* end = nullptr;
  errno = 0;
  const double v = t.empty() ? 0.0 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) {
    return ConfigurationError(std::string(where) + ": " + Quote(text) + " is not a number");
  }
  return v;
}

}  // namespace config_internal

using config_internal::Quote;
using config_internal::ToLower;

// ---------------------------------------------------------------------------------------------
// Enums

std::string_view RecordFormatName(RecordFormat v) {
  return v == RecordFormat::kJson ? "json" : "proto";
}

std::string_view TransportName(Transport v) {
  switch (v) {
    case Transport::kJson: return "json";
    case Transport::kArrowFlight: return "arrow_flight";
    case Transport::kProtobuf: break;
  }
  return "protobuf";
}

std::string_view IpcCompressionName(IpcCompression v) {
  switch (v) {
    case IpcCompression::kLz4Frame: return "lz4_frame";
    case IpcCompression::kZstd: return "zstd";
    case IpcCompression::kNone: break;
  }
  return "none";
}

std::string_view DescriptorSourceName(DescriptorSource v) {
  switch (v) {
    case DescriptorSource::kGiven: return "given";
    case DescriptorSource::kUnityCatalog: return "unity_catalog";
    case DescriptorSource::kArrowSchema: break;
  }
  return "arrow_schema";
}

std::string_view InFlightFullPolicyName(InFlightFullPolicy v) {
  return v == InFlightFullPolicy::kReject ? "reject" : "block";
}

std::string_view LogLevelName(LogLevel v) {
  switch (v) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

namespace {

arrow::Status BadEnum(std::string_view option, std::string_view text, std::string_view allowed) {
  return ConfigurationError(std::string(option) + ": " + Quote(text) + " is not one of " +
                            std::string(allowed));
}

}  // namespace

arrow::Result<RecordFormat> ParseRecordFormat(std::string_view text, std::string_view option) {
  const std::string v = ToLower(text);
  if (v == "proto" || v == "protobuf") return RecordFormat::kProto;
  if (v == "json") return RecordFormat::kJson;
  return BadEnum(option, text, "proto, json");
}

arrow::Result<Transport> ParseTransport(std::string_view text, std::string_view option) {
  const std::string v = ToLower(text);
  for (Transport t : {Transport::kProtobuf, Transport::kJson, Transport::kArrowFlight}) {
    if (v == TransportName(t)) return t;
  }
  return BadEnum(option, text, "protobuf, json, arrow_flight");
}

arrow::Result<IpcCompression> ParseIpcCompression(std::string_view text,
                                                  std::string_view option) {
  const std::string v = ToLower(text);
  for (IpcCompression c : {IpcCompression::kNone, IpcCompression::kLz4Frame, IpcCompression::kZstd}) {
    if (v == IpcCompressionName(c)) return c;
  }
  return BadEnum(option, text, "none, lz4_frame, zstd");
}

arrow::Result<DescriptorSource> ParseDescriptorSource(std::string_view text,
                                                      std::string_view option) {
  const std::string v = ToLower(text);
  if (v == "arrow_schema") return DescriptorSource::kArrowSchema;
  if (v == "given") return DescriptorSource::kGiven;
  if (v == "unity_catalog") return DescriptorSource::kUnityCatalog;
  return BadEnum(option, text, "arrow_schema, given, unity_catalog");
}

arrow::Result<InFlightFullPolicy> ParseInFlightFullPolicy(std::string_view text,
                                                          std::string_view option) {
  const std::string v = ToLower(text);
  if (v == "block") return InFlightFullPolicy::kBlock;
  if (v == "reject") return InFlightFullPolicy::kReject;
  return BadEnum(option, text, "block, reject");
}

arrow::Result<LogLevel> ParseLogLevel(std::string_view text, std::string_view option) {
  const std::string v = ToLower(text);
  for (LogLevel l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                     LogLevel::kError, LogLevel::kOff}) {
    if (v == LogLevelName(l)) return l;
  }
  if (v == "warning") return LogLevel::kWarn;
  return BadEnum(option, text, "trace, debug, info, warn, error, off");
}

// ---------------------------------------------------------------------------------------------
// Endpoint and table name

namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

}  // namespace

arrow::Result<EndpointInfo> ParseEndpoint(std::string_view endpoint, std::string_view option) {
  // One parser for the library: the transport's (it also dials what this accepts).
  ARROW_ASSIGN_OR_RAISE(auto parsed, internal::ParseEndpoint(endpoint, option, ": "));
  EndpointInfo info;
  info.tls = parsed.tls;
  info.host = std::move(parsed.host);
  info.port = parsed.port;
  return info;
}

arrow::Result<TableNameParts> ParseTableName(std::string_view table_name) {
  if (table_name.empty()) return ConfigurationError("table_name is empty");
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = table_name.find('.', start);
    parts.push_back(table_name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() > 3) {
    return ConfigurationError("table_name: " + Quote(table_name) + " has " +
                              std::to_string(parts.size()) +
                              " dot-separated parts; at most three (catalog.schema.table)");
  }
  for (std::string_view p : parts) {
    if (!IsIdentifier(p)) {
      return ConfigurationError("table_name: " + Quote(table_name) + " part " + Quote(p) +
                                " is not made of letters, digits and underscores");
    }
  }
  TableNameParts out;
  out.table = std::string(parts.back());
  if (parts.size() >= 2) out.schema = std::string(parts[parts.size() - 2]);
  if (parts.size() == 3) out.catalog = std::string(parts[0]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// WrapperConfiguration

WrapperConfiguration WrapperConfiguration::Make(std::string endpoint, std::string table_name) {
  WrapperConfiguration c;
  c.endpoint = std::move(endpoint);
  c.table_name = std::move(table_name);
  return c;
}

bool WrapperConfiguration::arrow_debug_on() const {
  if (!debug_arrow_enabled && !debug_protobuf_enabled) return debug_enabled;
  return debug_arrow_enabled.value_or(false);
}

bool WrapperConfiguration::protobuf_debug_on() const {
  if (!debug_arrow_enabled && !debug_protobuf_enabled) return debug_enabled;
  return debug_protobuf_enabled.value_or(false);
}

arrow::Status WrapperConfiguration::ValidateDebugOutputDir() const {
  if (any_debug_on() && (!debug_output_dir || debug_output_dir->empty())) {
    std::string which = arrow_debug_on() && protobuf_debug_on() ? "Arrow and protobuf"
                        : arrow_debug_on()                      ? "Arrow"
                                                                : "protobuf";
    return ConfigurationError("debug_output_dir is required when debug output is on (" + which +
                              " debug files are enabled)");
  }
  return arrow::Status::OK();
}

namespace {

arrow::Status RequirePositive(int64_t value, const char* option) {
  if (value <= 0) {
    return ConfigurationError(std::string(option) + " must be positive, got " +
                              std::to_string(value));
  }
  return arrow::Status::OK();
}

arrow::Status RequireNonNegative(int64_t value, const char* option) {
  if (value < 0) {
    return ConfigurationError(std::string(option) + " must not be negative, got " +
                              std::to_string(value));
  }
  return arrow::Status::OK();
}

// Durations are bounded (one year) so that `now + duration` and backoff arithmetic cannot
// overflow, whatever a configuration file says.
constexpr int64_t kMaxDurationMs = int64_t{365} * 24 * 3600 * 1000;

arrow::Status RequireDurationMs(int64_t value, const char* option, bool allow_zero) {
  ARROW_RETURN_NOT_OK(allow_zero ? RequireNonNegative(value, option)
                                 : RequirePositive(value, option));
  if (value > kMaxDurationMs) {
    return ConfigurationError(std::string(option) + " is " + std::to_string(value) +
                              " ms, above the limit of one year (" +
                              std::to_string(kMaxDurationMs) + " ms)");
  }
  return arrow::Status::OK();
}

arrow::Status RequireDurationSecs(int64_t value, const char* option) {
  ARROW_RETURN_NOT_OK(RequirePositive(value, option));
  if (value > kMaxDurationMs / 1000) {
    return ConfigurationError(std::string(option) + " is " + std::to_string(value) +
                              " s, above the limit of one year (" +
                              std::to_string(kMaxDurationMs / 1000) + " s)");
  }
  return arrow::Status::OK();
}

arrow::Status CheckHttpUrl(const std::string& url, const char* option) {
  const std::string lower = ToLower(url);
  if (lower.rfind("https://", 0) != 0 && lower.rfind("http://", 0) != 0) {
    return ConfigurationError(std::string(option) + ": " + Quote(url) +
                              " must start with https:// (or http:// for a local server)");
  }
  const size_t host_begin = url.find("://") + 3;
  if (host_begin >= url.size() || url[host_begin] == '/') {
    return ConfigurationError(std::string(option) + ": " + Quote(url) + " has no host");
  }
  for (char c : url) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      return ConfigurationError(std::string(option) + ": " + Quote(url) +
                                " contains whitespace or control characters");
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status WrapperConfiguration::Validate() const {
  ARROW_RETURN_NOT_OK(ValidateDebugOutputDir());

  // Endpoint: required unless nothing goes over the network.
  if (!endpoint.empty() || !zerobus_writer_disabled) {
    ARROW_RETURN_NOT_OK(ParseEndpoint(endpoint, "endpoint").status());
  }
  ARROW_RETURN_NOT_OK(ParseTableName(table_name).status());

  // Credentials: both or neither; required unless the writer is disabled.
  if (client_id.has_value() != client_secret.has_value()) {
    return ConfigurationError(client_id ? "client_secret is required when client_id is given "
                                          "(give both or neither)"
                                        : "client_id is required when client_secret is given "
                                          "(give both or neither)");
  }
  if (client_id && client_id->empty()) return ConfigurationError("client_id is empty");
  if (client_secret && client_secret->empty()) {
    return ConfigurationError("client_secret is empty");
  }
  if (!zerobus_writer_disabled) {
    if (!client_id) {
      return ConfigurationError(
          "client_id and client_secret are required unless zerobus_writer_disabled is true");
    }
    if (!unity_catalog_url || unity_catalog_url->empty()) {
      return ConfigurationError(
          "unity_catalog_url is required with client_id/client_secret (the OAuth token "
          "endpoint is {unity_catalog_url}/oidc/v1/token)");
    }
  }
  if (unity_catalog_url) {
    ARROW_RETURN_NOT_OK(CheckHttpUrl(*unity_catalog_url, "unity_catalog_url"));
    // The client secret goes to {unity_catalog_url}/oidc/v1/token: in clear only to this machine.
    if (client_secret && ToLower(*unity_catalog_url).rfind("http://", 0) == 0) {
      const std::string& url = *unity_catalog_url;
      const size_t begin = url.find("://") + 3;
      std::string host;
      if (begin < url.size() && url[begin] == '[') {
        const size_t close = url.find(']', begin);
        host = url.substr(begin + 1, close == std::string::npos ? std::string::npos
                                                                : close - begin - 1);
      } else {
        host = url.substr(begin, url.find_first_of("/:?#", begin) - begin);
      }
      if (!internal::IsLoopbackHost(host)) {
        return ConfigurationError(
            "unity_catalog_url: " + Quote(url) +
            " is plain http to another machine: the client secret would travel in clear; use "
            "https:// (http:// is only for a local server: localhost, 127.0.0.1, ::1)");
      }
    }
  }

  if (zerobus_writer_disabled && !any_debug_on()) {
    return ConfigurationError(
        "zerobus_writer_disabled needs a debug format on (debug_arrow_enabled, "
        "debug_protobuf_enabled or debug_enabled): otherwise the data goes nowhere");
  }

  // Debug files.
  ARROW_RETURN_NOT_OK(RequireDurationSecs(debug_flush_interval_secs, "debug_flush_interval_secs"));
  if (debug_max_file_size) {
    ARROW_RETURN_NOT_OK(RequirePositive(*debug_max_file_size, "debug_max_file_size"));
  }
  if (debug_max_files_retained) {
    ARROW_RETURN_NOT_OK(RequirePositive(*debug_max_files_retained, "debug_max_files_retained"));
  }
  if (debug_max_records_per_file) {
    ARROW_RETURN_NOT_OK(
        RequirePositive(*debug_max_records_per_file, "debug_max_records_per_file"));
  }

  // Retry.
  ARROW_RETURN_NOT_OK(RequirePositive(retry_max_attempts, "retry_max_attempts"));
  ARROW_RETURN_NOT_OK(RequireDurationMs(retry_base_delay_ms, "retry_base_delay_ms", false));
  ARROW_RETURN_NOT_OK(RequireDurationMs(retry_max_delay_ms, "retry_max_delay_ms", false));
  ARROW_RETURN_NOT_OK(RequireDurationMs(send_timeout_ms, "send_timeout_ms", false));
  ARROW_RETURN_NOT_OK(RequirePositive(max_sends_per_row, "max_sends_per_row"));
  if (retry_max_delay_ms < retry_base_delay_ms) {
    return ConfigurationError("retry_max_delay_ms (" + std::to_string(retry_max_delay_ms) +
                              ") must be >= retry_base_delay_ms (" +
                              std::to_string(retry_base_delay_ms) + ")");
  }

  // Observability.
  if (observability_config) {
    const auto& o = *observability_config;
    ARROW_RETURN_NOT_OK(
        RequireDurationSecs(o.write_interval_secs, "observability_config.write_interval_secs"));
    if (o.endpoint) ARROW_RETURN_NOT_OK(CheckHttpUrl(*o.endpoint, "observability_config.endpoint"));
    if (o.output_dir && o.output_dir->empty()) {
      return ConfigurationError("observability_config.output_dir is empty");
    }
  }

  // Streams and flow control.
  ARROW_RETURN_NOT_OK(RequirePositive(streams_per_table, "streams_per_table"));
  if (streams_per_table > 256) {
    return ConfigurationError("streams_per_table must be at most 256, got " +
                              std::to_string(streams_per_table));
  }
  ARROW_RETURN_NOT_OK(RequirePositive(max_inflight_requests, "max_inflight_requests"));
  ARROW_RETURN_NOT_OK(RequirePositive(max_inflight_bytes, "max_inflight_bytes"));
  ARROW_RETURN_NOT_OK(RequireDurationMs(stream_open_timeout_ms, "stream_open_timeout_ms", false));
  ARROW_RETURN_NOT_OK(RequireDurationMs(recovery_backoff_ms, "recovery_backoff_ms", true));
  ARROW_RETURN_NOT_OK(RequireNonNegative(recovery_retries, "recovery_retries"));
  ARROW_RETURN_NOT_OK(RequireDurationMs(flush_timeout_ms, "flush_timeout_ms", false));
  ARROW_RETURN_NOT_OK(RequireDurationMs(ack_timeout_ms, "ack_timeout_ms", false));

  if (application_name) {
    if (application_name->empty()) return ConfigurationError("application_name is empty");
    for (char c : *application_name) {
      // It goes into the user-agent header: printable ASCII only.
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
        return ConfigurationError("application_name: " + Quote(*application_name) +
                                  " must be printable ASCII (it is sent in user-agent)");
      }
    }
  }
  if (ca_file) {
    std::error_code ec;
    if (ca_file->empty()) return ConfigurationError("ca_file is empty");
    // A CA file only matters for TLS: with a plaintext endpoint it is a mistake to report now,
    // not on every row later.
    if (!endpoint.empty()) {
      auto parsed = ParseEndpoint(endpoint, "endpoint");
      if (parsed.ok() && !parsed->tls) {
        return ConfigurationError("ca_file: " + Quote(*ca_file) + " is given, but endpoint " +
                                  Quote(endpoint) +
                                  " is plaintext (http://): use https:// or drop ca_file");
      }
    }
    if (!std::filesystem::is_regular_file(*ca_file, ec)) {
      return ConfigurationError("ca_file: " + Quote(*ca_file) + " is not a readable file");
    }
  }

  // Transport. record_type is the older spelling of the first two transports.
  if (transport == Transport::kArrowFlight && record_type == RecordFormat::kJson) {
    return ConfigurationError(
        "transport 'arrow_flight' conflicts with record_type 'json': Arrow Flight sends Arrow "
        "record batches, not JSON rows (drop record_type, or use transport 'json')");
  }
  if (ipc_compression != IpcCompression::kNone && transport != Transport::kArrowFlight) {
    return ConfigurationError(std::string("ipc_compression '") +
                              std::string(IpcCompressionName(ipc_compression)) +
                              "' needs transport 'arrow_flight' (transport is '" +
                              std::string(TransportName(effective_transport())) +
                              "'): only Arrow Flight sends Arrow IPC");
  }
  if (transport == Transport::kArrowFlight && descriptor_source == DescriptorSource::kGiven) {
    return ConfigurationError(
        "descriptor_source 'given' (a protobuf descriptor) cannot be used with transport "
        "'arrow_flight', which sends Arrow batches: use descriptor_source 'arrow_schema' or "
        "'unity_catalog' for the table's schema");
  }

  // Descriptor source.
  if (descriptor_source == DescriptorSource::kGiven && !descriptor) {
    return ConfigurationError("descriptor is required when descriptor_source is 'given'");
  }
  if (descriptor_source != DescriptorSource::kGiven && descriptor) {
    return ConfigurationError(std::string("descriptor is set but descriptor_source is '") +
                              std::string(DescriptorSourceName(descriptor_source)) +
                              "'; set descriptor_source to 'given' to use it");
  }
  if (descriptor && descriptor->name().empty()) {
    return ConfigurationError("descriptor has no message name");
  }
  if (descriptor_source == DescriptorSource::kUnityCatalog) {
    if (!unity_catalog_url || !client_id) {
      return ConfigurationError(
          "descriptor_source 'unity_catalog' needs unity_catalog_url, client_id and "
          "client_secret (the tables API is read with an OAuth token)");
    }
  }

  // Cool-downs.
  if (!(failure_rate_threshold > 0.0 && failure_rate_threshold <= 1.0)) {
    std::ostringstream os;
    os << "failure_rate_threshold must be in (0, 1], got " << failure_rate_threshold;
    return ConfigurationError(os.str());
  }
  ARROW_RETURN_NOT_OK(RequirePositive(failure_rate_min_rows, "failure_rate_min_rows"));
  ARROW_RETURN_NOT_OK(RequireDurationMs(failure_cooldown_ms, "failure_cooldown_ms", true));
  ARROW_RETURN_NOT_OK(RequireDurationMs(cooldown_jitter_ms, "cooldown_jitter_ms", true));
  ARROW_RETURN_NOT_OK(
      RequireDurationMs(pipeline_blocked_cooldown_ms, "pipeline_blocked_cooldown_ms", true));
  return arrow::Status::OK();
}

arrow::Status WrapperConfiguration::ValidateForWrapper() const {
  ARROW_RETURN_NOT_OK(Validate());
  if (!zerobus_writer_disabled) {
    ARROW_ASSIGN_OR_RAISE(const TableNameParts parts, ParseTableName(table_name));
    if (parts.catalog.empty()) {
      return ConfigurationError("table_name: " + Quote(table_name) +
                                " must have three parts (catalog.schema.table) to write to "
                                "Zerobus");
    }
  }
  return arrow::Status::OK();
}

namespace {

template <typename T>
std::string Opt(const std::optional<T>& v) {
  if (!v) return "None";
  if constexpr (std::is_same_v<T, std::string>) {
    return "'" + *v + "'";
  } else if constexpr (std::is_same_v<T, bool>) {
    return *v ? "true" : "false";
  } else {
    return std::to_string(*v);
  }
}

const char* Bool(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string WrapperConfiguration::ToString() const {
  std::ostringstream os;
  os << "WrapperConfiguration(endpoint='" << endpoint << "', table_name='" << table_name
     << "', client_id=" << Opt(client_id)
     << ", client_secret=" << (client_secret ? (client_secret->empty() ? "''" : "***") : "None")
     << ", unity_catalog_url=" << Opt(unity_catalog_url)
     << ", observability_enabled=" << Bool(observability_enabled) << ", observability_config=";
  if (observability_config) {
    const auto& o = *observability_config;
    os << "{endpoint=" << Opt(o.endpoint) << ", output_dir=" << Opt(o.output_dir)
       << ", write_interval_secs=" << o.write_interval_secs
       << ", log_level=" << LogLevelName(o.log_level) << "}";
  } else {
    os << "None";
  }
  os << ", debug_enabled=" << Bool(debug_enabled)
     << ", debug_arrow_enabled=" << Opt(debug_arrow_enabled)
     << ", debug_protobuf_enabled=" << Opt(debug_protobuf_enabled)
     << ", debug_output_dir=" << Opt(debug_output_dir)
     << ", debug_flush_interval_secs=" << debug_flush_interval_secs
     << ", debug_max_file_size=" << Opt(debug_max_file_size)
     << ", debug_max_files_retained=" << Opt(debug_max_files_retained)
     << ", debug_max_records_per_file=" << Opt(debug_max_records_per_file)
     << ", retry_max_attempts=" << retry_max_attempts
     << ", retry_base_delay_ms=" << retry_base_delay_ms
     << ", retry_max_delay_ms=" << retry_max_delay_ms
     << ", send_timeout_ms=" << send_timeout_ms << ", max_sends_per_row=" << max_sends_per_row
     << ", zerobus_writer_disabled=" << Bool(zerobus_writer_disabled)
     << ", streams_per_table=" << streams_per_table
     << ", max_inflight_requests=" << max_inflight_requests
     << ", max_inflight_bytes=" << max_inflight_bytes
     << ", when_inflight_full=" << InFlightFullPolicyName(when_inflight_full)
     << ", stream_open_timeout_ms=" << stream_open_timeout_ms
     << ", recovery_backoff_ms=" << recovery_backoff_ms
     << ", recovery_retries=" << recovery_retries << ", flush_timeout_ms=" << flush_timeout_ms
     << ", ack_timeout_ms=" << ack_timeout_ms << ", application_name=" << Opt(application_name)
     << ", ca_file=" << Opt(ca_file) << ", record_type=" << RecordFormatName(record_type)
     << ", transport=" << TransportName(transport)
     << ", ipc_compression=" << IpcCompressionName(ipc_compression)
     << ", descriptor_source=" << DescriptorSourceName(descriptor_source)
     << ", descriptor=" << (descriptor ? "'" + descriptor->name() + "'" : std::string("None"))
     << ", failure_rate_threshold=" << failure_rate_threshold
     << ", failure_rate_min_rows=" << failure_rate_min_rows
     << ", failure_cooldown_ms=" << failure_cooldown_ms
     << ", cooldown_jitter_ms=" << cooldown_jitter_ms
     << ", pipeline_blocked_cooldown_ms=" << pipeline_blocked_cooldown_ms << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const WrapperConfiguration& config) {
  return os << config.ToString();
}

arrow::Result<google::protobuf::DescriptorProto> ReadDescriptorFile(const std::string& path,
                                                                   std::string_view option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ConfigurationError(std::string(option) + ": cannot open " + Quote(path) + ": " +
                              std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  google::protobuf::DescriptorProto descriptor;
  if (!descriptor.ParseFromString(buf.str())) {
    return ConfigurationError(std::string(option) + ": " + Quote(path) +
                              " does not hold a serialized google.protobuf.DescriptorProto");
  }
  if (descriptor.name().empty()) {
    return ConfigurationError(std::string(option) + ": " + Quote(path) +
                              " holds a DescriptorProto without a message name");
  }
  return descriptor;
}

}  // namespace arrow_zerobus
