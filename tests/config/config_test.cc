#include "arrow_zerobus/config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/errors.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecret = "s3cr3t-VALUE-never-shown";

// A configuration that passes Validate(): the starting point every negative case changes once.
WrapperConfiguration Good() {
  auto c = WrapperConfiguration::Make("https://123.zerobus.us-west-2.cloud.databricks.com",
                                      "main.default.events");
  c.client_id = "sp-id";
  c.client_secret = SecretString(kSecret);
  c.unity_catalog_url = "https://workspace.cloud.databricks.com";
  return c;
}

// Asserts a ConfigurationError whose message contains `needle` and never the secret.
void ExpectConfigError(const arrow::Status& st, const std::string& needle) {
  ASSERT_FALSE(st.ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(GetErrorKind(st), ErrorKind::kConfiguration) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr(needle));
  EXPECT_THAT(st.ToString(), Not(HasSubstr(kSecret)));
}

TEST(ConfigDefaults, MatchPythonContract) {
  const auto c = WrapperConfiguration::Defaults();
  EXPECT_FALSE(c.client_id.has_value());
  EXPECT_FALSE(c.client_secret.has_value());
  EXPECT_FALSE(c.unity_catalog_url.has_value());
  EXPECT_FALSE(c.observability_enabled);
  EXPECT_FALSE(c.observability_config.has_value());
  EXPECT_FALSE(c.debug_enabled);
  EXPECT_FALSE(c.debug_arrow_enabled.has_value());
  EXPECT_FALSE(c.debug_protobuf_enabled.has_value());
  EXPECT_FALSE(c.debug_output_dir.has_value());
  EXPECT_EQ(c.debug_flush_interval_secs, 5);
  EXPECT_FALSE(c.debug_max_file_size.has_value());
  EXPECT_EQ(c.debug_max_files_retained, std::optional<int64_t>(10));
  EXPECT_EQ(c.retry_max_attempts, 5);
  EXPECT_EQ(c.retry_base_delay_ms, 100);
  EXPECT_EQ(c.retry_max_delay_ms, 30000);
  EXPECT_FALSE(c.zerobus_writer_disabled);
  const auto o = ObservabilityConfig::Defaults();
  EXPECT_EQ(o.write_interval_secs, 5);
  EXPECT_EQ(o.log_level, LogLevel::kInfo);
  EXPECT_FALSE(o.endpoint.has_value());
  EXPECT_FALSE(o.output_dir.has_value());
}

TEST(ConfigDefaults, ProjectAdditions) {
  const auto c = WrapperConfiguration::Defaults();
  EXPECT_EQ(c.streams_per_table, 1);
  EXPECT_EQ(c.when_inflight_full, InFlightFullPolicy::kBlock);
  EXPECT_EQ(c.record_type, RecordFormat::kProto);
  EXPECT_EQ(c.descriptor_source, DescriptorSource::kArrowSchema);
  EXPECT_DOUBLE_EQ(c.failure_rate_threshold, 0.01);
  EXPECT_EQ(c.failure_rate_min_rows, 100);
  EXPECT_EQ(c.failure_cooldown_ms, 30000);
  EXPECT_EQ(c.stream_open_timeout_ms, 15000);
  EXPECT_EQ(c.flush_timeout_ms, 300000);
  EXPECT_EQ(c.ack_timeout_ms, 60000);
}

TEST(ConfigValidate, GoodConfigurationPasses) {
  ASSERT_TRUE(Good().Validate().ok()) << Good().Validate().ToString();
  ASSERT_TRUE(Good().ValidateForWrapper().ok());
}

// A CA file with a plaintext endpoint is a set-up mistake: refused at start-up, not on every row.
TEST(ConfigValidate, CaFileNeedsATlsEndpoint) {
  const std::string ca = (std::filesystem::temp_directory_path() / "az-config-ca.pem").string();
  { std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\n"; }
  auto c = Good();
  c.ca_file = ca;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  c.endpoint = "http://localhost:50051";
  ExpectConfigError(c.Validate(), "ca_file");
  ExpectConfigError(c.Validate(), "plaintext");
  std::filesystem::remove(ca);
}

// The secret goes to the token endpoint: plain http only to this machine.
TEST(ConfigValidate, PlainHttpTokenEndpointOnlyOnLoopback) {
  auto c = Good();
  for (const char* local : {"http://localhost:8080", "http://127.0.0.1:1", "http://[::1]:9"}) {
    c.unity_catalog_url = local;
    EXPECT_TRUE(c.Validate().ok()) << local << ": " << c.Validate().ToString();
  }
  for (const char* remote : {"http://workspace.example.com", "http://10.0.0.1:8080",
                             "http://127.0.0.1.example.com"}) {
    c.unity_catalog_url = remote;
    ExpectConfigError(c.Validate(), "unity_catalog_url");
    ExpectConfigError(c.Validate(), "in clear");
  }
}

TEST(SecretString, NeverPrintsValue) {
  SecretString s(kSecret);
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "***");
  EXPECT_EQ(s.ToString(), "***");
  EXPECT_EQ(s.Reveal(), kSecret);
  EXPECT_EQ(SecretString().ToString(), "");
  SecretString moved(std::move(s));
  EXPECT_EQ(moved.Reveal(), kSecret);
  EXPECT_TRUE(s.empty());  // NOLINT(bugprone-use-after-move): moved-from is wiped
}

TEST(SecretString, ConfigurationDumpRedacts) {
  const auto c = Good();
  std::ostringstream os;
  os << c;
  EXPECT_THAT(os.str(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(os.str(), HasSubstr("client_secret=***"));
  EXPECT_THAT(c.ToString(), HasSubstr("client_id='sp-id'"));
  EXPECT_THAT(c.ToString(), HasSubstr("retry_max_attempts=5"));
}

TEST(ConfigValidate, DebugOutputDirRequired) {
  auto c = Good();
  c.debug_enabled = true;
  ExpectConfigError(c.ValidateDebugOutputDir(), "debug_output_dir");
  ExpectConfigError(c.Validate(), "debug_output_dir");
  c.debug_enabled = false;
  c.debug_arrow_enabled = true;
  ExpectConfigError(c.ValidateDebugOutputDir(), "Arrow debug files");
  c.debug_arrow_enabled.reset();
  c.debug_protobuf_enabled = true;
  ExpectConfigError(c.ValidateDebugOutputDir(), "protobuf debug files");
  c.debug_output_dir = "/tmp/x";
  EXPECT_TRUE(c.ValidateDebugOutputDir().ok());
}

TEST(ConfigValidate, ConstructorCheckIgnoresOtherRules) {
  // python-api.md: the constructor checks only the debug-directory rule.
  auto c = WrapperConfiguration::Make("ftp://bad", "a.b.c.d");
  c.retry_max_attempts = 0;
  EXPECT_TRUE(c.ValidateDebugOutputDir().ok());
  EXPECT_FALSE(c.Validate().ok());
}

TEST(ConfigDebugSwitches, LegacySwitchOnlyWhenNeitherGiven) {
  WrapperConfiguration c;
  EXPECT_FALSE(c.any_debug_on());
  c.debug_enabled = true;
  EXPECT_TRUE(c.arrow_debug_on());
  EXPECT_TRUE(c.protobuf_debug_on());
  c.debug_arrow_enabled = true;  // one given: the legacy switch no longer applies
  EXPECT_TRUE(c.arrow_debug_on());
  EXPECT_FALSE(c.protobuf_debug_on());
  c.debug_enabled = false;
  c.debug_arrow_enabled = false;
  c.debug_protobuf_enabled = true;
  EXPECT_FALSE(c.arrow_debug_on());
  EXPECT_TRUE(c.protobuf_debug_on());
}

TEST(ConfigValidate, EndpointScheme) {
  auto c = Good();
  c.endpoint = "grpc://host:443";
  ExpectConfigError(c.Validate(), "endpoint: 'grpc://host:443' has scheme 'grpc://'");
  c.endpoint = "";
  ExpectConfigError(c.Validate(), "endpoint is empty");
  c.endpoint = "https://";
  ExpectConfigError(c.Validate(), "has no host");
  c.endpoint = "https://host:99999";
  ExpectConfigError(c.Validate(), "invalid port '99999'");
  c.endpoint = "https://host:abc";
  ExpectConfigError(c.Validate(), "invalid port 'abc'");
  c.endpoint = "https://host/path";
  ExpectConfigError(c.Validate(), "has a path");
  c.endpoint = "https://ho st";
  ExpectConfigError(c.Validate(), "invalid host");
  for (const char* ok : {"https://h.example.com", "http://localhost:50051", "h.example.com",
                         "h.example.com:8443", "HTTPS://H.example.com/"}) {
    c.endpoint = ok;
    EXPECT_TRUE(c.Validate().ok()) << ok << ": " << c.Validate().ToString();
  }
}

TEST(ParseEndpoint, DefaultsAndSchemes) {
  auto r = ParseEndpoint("workspace.zerobus.example.com");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tls);
  EXPECT_EQ(r->port, 443);
  EXPECT_EQ(r->target(), "workspace.zerobus.example.com:443");
  r = ParseEndpoint("http://127.0.0.1:50051");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->tls);
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 50051);
  r = ParseEndpoint("http://localhost");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 80);
  r = ParseEndpoint("http://[::1]:50051");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host, "::1");
  EXPECT_EQ(r->target(), "[::1]:50051");
  EXPECT_THAT(ParseEndpoint("http://[::1:50051").status().message(), HasSubstr("unclosed '['"));
  EXPECT_THAT(ParseEndpoint("http://[::1]x").status().message(), HasSubstr("text after ']'"));
  EXPECT_THAT(ParseEndpoint("http://[zz]:1").status().message(), HasSubstr("invalid host"));
}

TEST(ConfigValidate, TableName) {
  auto c = Good();
  c.table_name = "a.b.c.d";
  ExpectConfigError(c.Validate(), "table_name: 'a.b.c.d' has 4 dot-separated parts");
  c.table_name = "a..c";
  ExpectConfigError(c.Validate(), "part ''");
  c.table_name = "main.default.ev-ents";
  ExpectConfigError(c.Validate(), "part 'ev-ents'");
  c.table_name = "";
  ExpectConfigError(c.Validate(), "table_name is empty");
  // One or two parts pass Validate() (python contract) but not the wrapper's check.
  c.table_name = "events";
  EXPECT_TRUE(c.Validate().ok());
  ExpectConfigError(c.ValidateForWrapper(), "must have three parts");
  c.zerobus_writer_disabled = true;
  c.debug_arrow_enabled = true;
  c.debug_output_dir = "/tmp/d";
  EXPECT_TRUE(c.ValidateForWrapper().ok()) << c.ValidateForWrapper().ToString();
  auto parts = ParseTableName("cat.sch.tbl");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->catalog, "cat");
  EXPECT_EQ(parts->schema, "sch");
  EXPECT_EQ(parts->table, "tbl");
}

TEST(ConfigValidate, RetryNumbers) {
  auto c = Good();
  c.retry_max_attempts = 0;
  ExpectConfigError(c.Validate(), "retry_max_attempts must be positive, got 0");
  c = Good();
  c.retry_base_delay_ms = -1;
  ExpectConfigError(c.Validate(), "retry_base_delay_ms must be positive");
  c = Good();
  c.retry_max_delay_ms = 0;
  ExpectConfigError(c.Validate(), "retry_max_delay_ms must be positive");
  c = Good();
  c.retry_base_delay_ms = 500;
  c.retry_max_delay_ms = 100;
  ExpectConfigError(c.Validate(), "retry_max_delay_ms (100) must be >= retry_base_delay_ms (500)");
}

// Durations past a year are refused, so that no `now + duration` or backoff can overflow.
TEST(ConfigValidate, DurationsAreBoundedByAYear) {
  constexpr int64_t kYearMs = int64_t{365} * 24 * 3600 * 1000;
  const std::vector<std::pair<const char*, int64_t WrapperConfiguration::*>> options = {
      {"retry_base_delay_ms", &WrapperConfiguration::retry_base_delay_ms},
      {"stream_open_timeout_ms", &WrapperConfiguration::stream_open_timeout_ms},
      {"recovery_backoff_ms", &WrapperConfiguration::recovery_backoff_ms},
      {"flush_timeout_ms", &WrapperConfiguration::flush_timeout_ms},
      {"ack_timeout_ms", &WrapperConfiguration::ack_timeout_ms},
      {"failure_cooldown_ms", &WrapperConfiguration::failure_cooldown_ms},
      {"cooldown_jitter_ms", &WrapperConfiguration::cooldown_jitter_ms},
      {"pipeline_blocked_cooldown_ms", &WrapperConfiguration::pipeline_blocked_cooldown_ms},
  };
  for (const auto& [name, member] : options) {
    auto c = Good();
    c.retry_max_delay_ms = kYearMs;
    c.*member = kYearMs;
    EXPECT_TRUE(c.Validate().ok()) << name << ": " << c.Validate().ToString();
    c.*member = INT64_MAX;
    ExpectConfigError(c.Validate(), std::string(name) + " is " + std::to_string(INT64_MAX) +
                                        " ms, above the limit of one year");
  }
  auto c = Good();
  c.retry_max_delay_ms = kYearMs + 1;
  ExpectConfigError(c.Validate(), "retry_max_delay_ms");
  c = Good();
  c.debug_flush_interval_secs = INT64_MAX;
  ExpectConfigError(c.Validate(), "debug_flush_interval_secs");
}

TEST(ConfigValidate, DebugNumbers) {
  auto c = Good();
  c.debug_flush_interval_secs = 0;
  ExpectConfigError(c.Validate(), "debug_flush_interval_secs must be positive");
  c = Good();
  c.debug_max_file_size = 0;
  ExpectConfigError(c.Validate(), "debug_max_file_size must be positive");
  c = Good();
  c.debug_max_files_retained = 0;
  ExpectConfigError(c.Validate(), "debug_max_files_retained must be positive");
  c = Good();
  c.debug_max_files_retained.reset();  // keep all
  EXPECT_TRUE(c.Validate().ok());
  c.debug_max_records_per_file = -5;
  ExpectConfigError(c.Validate(), "debug_max_records_per_file must be positive");
}

TEST(ConfigValidate, Credentials) {
  auto c = Good();
  c.client_secret.reset();
  ExpectConfigError(c.Validate(), "client_secret is required when client_id is given");
  c = Good();
  c.client_id.reset();
  ExpectConfigError(c.Validate(), "client_id is required when client_secret is given");
  c = Good();
  c.client_id.reset();
  c.client_secret.reset();
  ExpectConfigError(c.Validate(), "required unless zerobus_writer_disabled");
  c = Good();
  c.client_id = "";
  ExpectConfigError(c.Validate(), "client_id is empty");
  c = Good();
  c.client_secret = SecretString("");
  ExpectConfigError(c.Validate(), "client_secret is empty");
  c = Good();
  c.unity_catalog_url.reset();
  ExpectConfigError(c.Validate(), "unity_catalog_url is required");
  c = Good();
  c.unity_catalog_url = "workspace.example.com";
  ExpectConfigError(c.Validate(), "unity_catalog_url: 'workspace.example.com' must start with");
}

TEST(ConfigValidate, WriterDisabled) {
  auto c = WrapperConfiguration::Make("", "events");
  c.zerobus_writer_disabled = true;
  ExpectConfigError(c.Validate(), "zerobus_writer_disabled needs a debug format on");
  c.debug_protobuf_enabled = true;
  ExpectConfigError(c.Validate(), "debug_output_dir");
  c.debug_output_dir = "/tmp/out";
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();  // no endpoint, no credentials
  c.client_id = "only-id";
  ExpectConfigError(c.Validate(), "give both or neither");
}

TEST(ConfigValidate, ObservabilityAndStreams) {
  auto c = Good();
  c.observability_config = ObservabilityConfig::Defaults();
  c.observability_config->write_interval_secs = 0;
  ExpectConfigError(c.Validate(), "observability_config.write_interval_secs must be positive");
  c.observability_config->write_interval_secs = 5;
  c.observability_config->endpoint = "localhost:4318";
  ExpectConfigError(c.Validate(), "observability_config.endpoint: 'localhost:4318' must start");
  c = Good();
  c.streams_per_table = 0;
  ExpectConfigError(c.Validate(), "streams_per_table must be positive");
  c.streams_per_table = 1000;
  ExpectConfigError(c.Validate(), "streams_per_table must be at most 256");
  c = Good();
  c.max_inflight_requests = 0;
  ExpectConfigError(c.Validate(), "max_inflight_requests must be positive");
  c = Good();
  c.max_inflight_bytes = -1;
  ExpectConfigError(c.Validate(), "max_inflight_bytes must be positive");
  c = Good();
  c.stream_open_timeout_ms = 0;
  ExpectConfigError(c.Validate(), "stream_open_timeout_ms must be positive");
  c = Good();
  c.flush_timeout_ms = 0;
  ExpectConfigError(c.Validate(), "flush_timeout_ms must be positive");
  c = Good();
  c.ack_timeout_ms = -3;
  ExpectConfigError(c.Validate(), "ack_timeout_ms must be positive");
  c = Good();
  c.recovery_retries = -1;
  ExpectConfigError(c.Validate(), "recovery_retries must not be negative");
  c = Good();
  c.application_name = "bad\nname";
  ExpectConfigError(c.Validate(), "application_name");
  c = Good();
  c.ca_file = "/nonexistent/ca.pem";
  ExpectConfigError(c.Validate(), "ca_file: '/nonexistent/ca.pem' is not a readable file");
}

TEST(ConfigValidate, DescriptorSourceAndCooldowns) {
  auto c = Good();
  c.descriptor_source = DescriptorSource::kGiven;
  ExpectConfigError(c.Validate(), "descriptor is required when descriptor_source is 'given'");
  c.descriptor = google::protobuf::DescriptorProto();
  ExpectConfigError(c.Validate(), "descriptor has no message name");
  c.descriptor->set_name("Row");
  EXPECT_TRUE(c.Validate().ok());
  c.descriptor_source = DescriptorSource::kArrowSchema;
  ExpectConfigError(c.Validate(), "descriptor is set but descriptor_source is 'arrow_schema'");
  c = Good();
  c.descriptor_source = DescriptorSource::kUnityCatalog;
  EXPECT_TRUE(c.Validate().ok());
  c.zerobus_writer_disabled = true;
  c.client_id.reset();
  c.client_secret.reset();
  c.debug_arrow_enabled = true;
  c.debug_output_dir = "/tmp/d";
  ExpectConfigError(c.Validate(), "descriptor_source 'unity_catalog' needs unity_catalog_url");
  c = Good();
  c.failure_rate_threshold = 0.0;
  ExpectConfigError(c.Validate(), "failure_rate_threshold must be in (0, 1]");
  c.failure_rate_threshold = 1.5;
  ExpectConfigError(c.Validate(), "failure_rate_threshold must be in (0, 1]");
  c = Good();
  c.failure_rate_min_rows = 0;
  ExpectConfigError(c.Validate(), "failure_rate_min_rows must be positive");
  c = Good();
  c.failure_cooldown_ms = -1;
  ExpectConfigError(c.Validate(), "failure_cooldown_ms must not be negative");
  c = Good();
  c.cooldown_jitter_ms = -1;
  ExpectConfigError(c.Validate(), "cooldown_jitter_ms must not be negative");
  c = Good();
  c.pipeline_blocked_cooldown_ms = -1;
  ExpectConfigError(c.Validate(), "pipeline_blocked_cooldown_ms must not be negative");
}

TEST(ConfigEnums, ParseAndName) {
  EXPECT_EQ(*ParseRecordFormat("JSON", "x"), RecordFormat::kJson);
  EXPECT_EQ(RecordFormatName(RecordFormat::kProto), "proto");
  EXPECT_EQ(*ParseDescriptorSource("unity_catalog", "x"), DescriptorSource::kUnityCatalog);
  EXPECT_EQ(*ParseInFlightFullPolicy("Reject", "x"), InFlightFullPolicy::kReject);
  EXPECT_EQ(*ParseLogLevel("warning", "x"), LogLevel::kWarn);
  ExpectConfigError(ParseLogLevel("loud", "observability.log_level").status(),
                    "observability.log_level: 'loud' is not one of trace, debug");
  ExpectConfigError(ParseRecordFormat("xml", "record_type").status(),
                    "record_type: 'xml' is not one of proto, json");
}

// ---------------------------------------------------------------------------------------------
// Environment

WrapperConfiguration::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigEnv, LoadsEveryGroup) {
  auto r = WrapperConfiguration::FromEnvironment(Env({
      {"ZEROBUS_ENDPOINT", "https://h.example.com"},
      {"ZEROBUS_TABLE_NAME", "c.s.t"},
      {"UNITY_CATALOG_URL", "https://ws.example.com"},
      {"ZEROBUS_CLIENT_ID", "id"},
      {"ZEROBUS_CLIENT_SECRET", kSecret},
      {"DEBUG_ARROW_ENABLED", "true"},
      {"DEBUG_OUTPUT_DIR", "/tmp/dbg"},
      {"DEBUG_MAX_FILES_RETAINED", "none"},
      {"DEBUG_MAX_FILE_SIZE", "1048576"},
      {"RETRY_MAX_ATTEMPTS", "7"},
      {"RETRY_BASE_DELAY_MS", "50"},
      {"RETRY_MAX_DELAY_MS", "900"},
      {"OTLP_ENABLED", "yes"},
      {"OTLP_ENDPOINT", "http://127.0.0.1:4318"},
      {"OTLP_WRITE_INTERVAL_SECS", "2"},
      {"OTLP_LOG_LEVEL", "debug"},
      {"ZEROBUS_STREAMS_PER_TABLE", "4"},
      {"ZEROBUS_WHEN_INFLIGHT_FULL", "reject"},
      {"ZEROBUS_RECORD_TYPE", "json"},
      {"ZEROBUS_FAILURE_RATE_THRESHOLD", "0.05"},
  }));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& c = *r;
  EXPECT_EQ(c.endpoint, "https://h.example.com");
  EXPECT_EQ(c.table_name, "c.s.t");
  EXPECT_EQ(c.client_secret->Reveal(), kSecret);
  EXPECT_TRUE(c.arrow_debug_on());
  EXPECT_FALSE(c.protobuf_debug_on());
  EXPECT_FALSE(c.debug_max_files_retained.has_value());
  EXPECT_EQ(c.debug_max_file_size, std::optional<int64_t>(1048576));
  EXPECT_EQ(c.retry_max_attempts, 7);
  EXPECT_EQ(c.retry_max_delay_ms, 900);
  EXPECT_TRUE(c.observability_enabled);
  ASSERT_TRUE(c.observability_config.has_value());
  EXPECT_EQ(c.observability_config->endpoint, std::optional<std::string>("http://127.0.0.1:4318"));
  EXPECT_EQ(c.observability_config->write_interval_secs, 2);
  EXPECT_EQ(c.observability_config->log_level, LogLevel::kDebug);
  EXPECT_EQ(c.streams_per_table, 4);
  EXPECT_EQ(c.when_inflight_full, InFlightFullPolicy::kReject);
  EXPECT_EQ(c.record_type, RecordFormat::kJson);
  EXPECT_DOUBLE_EQ(c.failure_rate_threshold, 0.05);
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
}

TEST(ConfigEnv, UnsetKeepsDefaults) {
  auto r = WrapperConfiguration::FromEnvironment(Env({}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->retry_max_attempts, 5);
  EXPECT_EQ(r->debug_max_files_retained, std::optional<int64_t>(10));
  EXPECT_FALSE(r->observability_config.has_value());
}

TEST(ConfigEnv, BadValuesNameTheVariable) {
  ExpectConfigError(WrapperConfiguration::FromEnvironment(Env({{"RETRY_MAX_ATTEMPTS", "five"}}))
                        .status(),
                    "environment variable RETRY_MAX_ATTEMPTS: 'five' is not an integer");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"DEBUG_ENABLED", "maybe"}})).status(),
      "environment variable DEBUG_ENABLED: 'maybe' is not a boolean");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"RETRY_MAX_ATTEMPTS", "99999999999"}}))
          .status(),
      "out of range for a 32-bit integer");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_WHEN_INFLIGHT_FULL", "drop"}}))
          .status(),
      "environment variable ZEROBUS_WHEN_INFLIGHT_FULL: 'drop' is not one of block, reject");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_FAILURE_RATE_THRESHOLD", "1%"}}))
          .status(),
      "'1%' is not a number");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_DESCRIPTOR_FILE", "/nonexistent.desc"}}))
          .status(),
      "environment variable ZEROBUS_DESCRIPTOR_FILE: cannot open '/nonexistent.desc'");
}

TEST(ConfigEnv, ProcessEnvironment) {
  ::setenv("ZEROBUS_TABLE_NAME", "from.process.env", 1);
  ::setenv("RETRY_BASE_DELAY_MS", "250", 1);
  auto r = WrapperConfiguration::FromEnvironment();
  ::unsetenv("ZEROBUS_TABLE_NAME");
  ::unsetenv("RETRY_BASE_DELAY_MS");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->table_name, "from.process.env");
  EXPECT_EQ(r->retry_base_delay_ms, 250);
}

TEST(ConfigEnv, DescriptorFileMeansGivenSource) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("az_config_desc_" + std::to_string(::getpid()) + ".desc");
  google::protobuf::DescriptorProto d;
  d.set_name("Row");
  auto* f = d.add_field();
  f->set_name("id");
  f->set_number(1);
  f->set_type(google::protobuf::FieldDescriptorProto::TYPE_INT64);
  {
    std::ofstream out(path, std::ios::binary);
    out << d.SerializeAsString();
  }
  auto r = WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_DESCRIPTOR_FILE", path}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->descriptor_source, DescriptorSource::kGiven);
  ASSERT_TRUE(r->descriptor.has_value());
  EXPECT_EQ(r->descriptor->name(), "Row");
  EXPECT_EQ(r->descriptor->field(0).name(), "id");
  {
    std::ofstream out(path, std::ios::binary);
    out << "\xff\xff\xff not a descriptor";
  }
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_DESCRIPTOR_FILE", path}})).status(),
      "does not hold a serialized google.protobuf.DescriptorProto");
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------------------------------------
// YAML

TEST(ConfigYaml, LoadsEverySection) {
  const char* yaml = R"(
zerobus_endpoint: https://123.zerobus.example.com
table_name: main.default.events
unity_catalog_url: https://ws.example.com
client_id: sp
client_secret: s3cr3t-VALUE-never-shown
observability:
  enabled: true
  endpoint: http://127.0.0.1:4318
  output_dir: /tmp/otlp
  write_interval_secs: 3
  log_level: warn
debug:
  enabled: true
  output_dir: /tmp/debug
  flush_interval_secs: 2
  max_file_size: 4096
  max_files_retained: null
  max_records_per_file: 1000
retry:
  max_attempts: 3
  base_delay_ms: 10
  max_delay_ms: 1000
stream:
  streams_per_table: 2
  max_inflight_requests: 100
  max_inflight_bytes: 1048576
  when_inflight_full: reject
  open_timeout_ms: 5000
  flush_timeout_ms: 6000
  ack_timeout_ms: 7000
  application_name: my-app
  record_type: proto
  descriptor_source: arrow_schema
cooldown:
  failure_rate_threshold: 0.02
  failure_rate_min_rows: 50
  failure_cooldown_ms: 1000
  jitter_ms: 10
  pipeline_blocked_cooldown_ms: 2000
)";
  auto r = WrapperConfiguration::FromYamlString(yaml, "test.yaml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& c = *r;
  EXPECT_EQ(c.endpoint, "https://123.zerobus.example.com");
  EXPECT_EQ(c.table_name, "main.default.events");
  EXPECT_EQ(c.client_id, std::optional<std::string>("sp"));
  EXPECT_EQ(c.client_secret->Reveal(), kSecret);
  EXPECT_TRUE(c.observability_enabled);
  EXPECT_EQ(c.observability_config->output_dir, std::optional<std::string>("/tmp/otlp"));
  EXPECT_EQ(c.observability_config->write_interval_secs, 3);
  EXPECT_EQ(c.observability_config->log_level, LogLevel::kWarn);
  EXPECT_TRUE(c.arrow_debug_on() && c.protobuf_debug_on());
  EXPECT_EQ(c.debug_flush_interval_secs, 2);
  EXPECT_EQ(c.debug_max_file_size, std::optional<int64_t>(4096));
  EXPECT_FALSE(c.debug_max_files_retained.has_value());
  EXPECT_EQ(c.debug_max_records_per_file, std::optional<int64_t>(1000));
  EXPECT_EQ(c.retry_max_attempts, 3);
  EXPECT_EQ(c.retry_base_delay_ms, 10);
  EXPECT_EQ(c.streams_per_table, 2);
  EXPECT_EQ(c.max_inflight_requests, 100);
  EXPECT_EQ(c.when_inflight_full, InFlightFullPolicy::kReject);
  EXPECT_EQ(c.stream_open_timeout_ms, 5000);
  EXPECT_EQ(c.ack_timeout_ms, 7000);
  EXPECT_EQ(c.application_name, std::optional<std::string>("my-app"));
  EXPECT_DOUBLE_EQ(c.failure_rate_threshold, 0.02);
  EXPECT_EQ(c.cooldown_jitter_ms, 10);
  EXPECT_EQ(c.pipeline_blocked_cooldown_ms, 2000);
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
}

TEST(ConfigYaml, ErrorsNameKeyLineAndValue) {
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("table_name: a\nretry:\n  max_attempts: lots\n", "c.yaml")
          .status(),
      "c.yaml:3: retry.max_attempts: 'lots' is not an integer");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("retry:\n  max_atempts: 3\n", "c.yaml").status(),
      "c.yaml:2: retry.max_atempts: unknown key (known keys in retry: base_delay_ms, "
      "max_attempts, max_delay_ms, max_sends_per_row, send_timeout_ms)");
  ExpectConfigError(WrapperConfiguration::FromYamlString("endpoint: x\n", "c.yaml").status(),
                    "c.yaml:1: endpoint: unknown key");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("debug:\n  enabled: sometimes\n", "c.yaml").status(),
      "c.yaml:2: debug.enabled: 'sometimes' is not a boolean");
  ExpectConfigError(WrapperConfiguration::FromYamlString("debug: 5\n", "c.yaml").status(),
                    "debug: must be a mapping");
  ExpectConfigError(WrapperConfiguration::FromYamlString("- a\n- b\n", "c.yaml").status(),
                    "document: must be a mapping");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("retry:\n  max_attempts: null\n", "c.yaml").status(),
      "retry.max_attempts: must not be null");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("table_name: [unclosed\n", "c.yaml").status(),
      "c.yaml:2: invalid YAML");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("stream:\n  when_inflight_full: drop\n", "c.yaml")
          .status(),
      "stream.when_inflight_full: 'drop' is not one of block, reject");
}

TEST(ConfigYaml, SecretNeverEchoed) {
  // A secret given as a mapping is refused without showing it.
  auto st = WrapperConfiguration::FromYamlString(
                std::string("client_secret:\n  nested: ") + kSecret + "\n", "c.yaml")
                .status();
  ExpectConfigError(st, "c.yaml:1: client_secret: must be a single value, not a mapping");
  // A parse error on the secret's line must not quote it either.
  st = WrapperConfiguration::FromYamlString(
           std::string("client_secret: [") + kSecret + ", x\n", "c.yaml")
           .status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.ToString(), Not(HasSubstr(kSecret)));
}

TEST(ConfigYaml, FileLoadingAndMissingFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("az_config_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "zerobus_endpoint: http://localhost:50051\ntable_name: a.b.c\n"
           "zerobus_writer_disabled: true\ndebug:\n  arrow_enabled: true\n  output_dir: /tmp/x\n";
  }
  auto r = WrapperConfiguration::FromYamlFile(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->zerobus_writer_disabled);
  EXPECT_TRUE(r->Validate().ok()) << r->Validate().ToString();
  ExpectConfigError(WrapperConfiguration::FromYamlFile("/nonexistent/zerobus.yaml").status(),
                    "configuration file '/nonexistent/zerobus.yaml' cannot be opened");
}

// ---------------------------------------------------------------------------------------------
// Transport (protobuf / json / arrow_flight) and Arrow Flight IPC compression

TEST(ConfigTransport, DefaultsNamesAndParsers) {
  const auto c = WrapperConfiguration::Defaults();
  EXPECT_EQ(c.transport, Transport::kProtobuf);
  EXPECT_EQ(c.ipc_compression, IpcCompression::kNone);
  EXPECT_EQ(c.effective_transport(), Transport::kProtobuf);
  for (Transport t : {Transport::kProtobuf, Transport::kJson, Transport::kArrowFlight}) {
    EXPECT_EQ(*ParseTransport(TransportName(t), "transport"), t);
  }
  EXPECT_EQ(TransportName(Transport::kArrowFlight), "arrow_flight");
  EXPECT_EQ(*ParseTransport("Arrow_Flight", "transport"), Transport::kArrowFlight);
  for (IpcCompression v : {IpcCompression::kNone, IpcCompression::kLz4Frame, IpcCompression::kZstd}) {
    EXPECT_EQ(*ParseIpcCompression(IpcCompressionName(v), "ipc_compression"), v);
  }
  EXPECT_EQ(IpcCompressionName(IpcCompression::kLz4Frame), "lz4_frame");
  EXPECT_EQ(*ParseIpcCompression("ZSTD", "x"), IpcCompression::kZstd);
  for (const char* bad : {"flight", "grpc", "", "proto buf"}) {
    ExpectConfigError(ParseTransport(bad, "transport").status(),
                      std::string("transport: '") + bad +
                          "' is not one of protobuf, json, arrow_flight");
  }
  for (const char* bad : {"lz4", "gzip", "", "snappy"}) {
    ExpectConfigError(ParseIpcCompression(bad, "ipc_compression").status(),
                      std::string("ipc_compression: '") + bad +
                          "' is not one of none, lz4_frame, zstd");
  }
}

TEST(ConfigTransport, RecordTypeIsTheOlderSpelling) {
  auto c = Good();
  c.record_type = RecordFormat::kJson;
  EXPECT_EQ(c.effective_transport(), Transport::kJson);
  EXPECT_TRUE(c.Validate().ok());
  c.transport = Transport::kJson;  // both say json: they agree
  EXPECT_EQ(c.effective_transport(), Transport::kJson);
  EXPECT_TRUE(c.Validate().ok());
  c.record_type = RecordFormat::kProto;
  EXPECT_EQ(c.effective_transport(), Transport::kJson);
  EXPECT_TRUE(c.Validate().ok());
  c.transport = Transport::kArrowFlight;
  EXPECT_EQ(c.effective_transport(), Transport::kArrowFlight);
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  c.record_type = RecordFormat::kJson;
  ExpectConfigError(c.Validate(), "transport 'arrow_flight' conflicts with record_type 'json'");
}

TEST(ConfigTransport, IpcCompressionOnlyWithArrowFlight) {
  auto c = Good();
  c.transport = Transport::kArrowFlight;
  for (IpcCompression v : {IpcCompression::kNone, IpcCompression::kLz4Frame, IpcCompression::kZstd}) {
    c.ipc_compression = v;
    EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  }
  c.transport = Transport::kProtobuf;
  ExpectConfigError(c.Validate(),
                    "ipc_compression 'zstd' needs transport 'arrow_flight' (transport is "
                    "'protobuf')");
  c.transport = Transport::kJson;
  c.ipc_compression = IpcCompression::kLz4Frame;
  ExpectConfigError(c.Validate(),
                    "ipc_compression 'lz4_frame' needs transport 'arrow_flight' (transport is "
                    "'json')");
  c.transport = Transport::kProtobuf;
  c.record_type = RecordFormat::kJson;
  ExpectConfigError(c.Validate(), "(transport is 'json')");
}

TEST(ConfigTransport, GivenDescriptorMakesNoSenseWithArrowFlight) {
  auto c = Good();
  c.transport = Transport::kArrowFlight;
  c.descriptor_source = DescriptorSource::kGiven;
  c.descriptor = google::protobuf::DescriptorProto();
  c.descriptor->set_name("Row");
  ExpectConfigError(c.Validate(),
                    "descriptor_source 'given' (a protobuf descriptor) cannot be used with "
                    "transport 'arrow_flight'");
  c.descriptor.reset();
  c.descriptor_source = DescriptorSource::kUnityCatalog;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
}

TEST(ConfigTransport, EnvironmentYamlAndDump) {
  auto env = WrapperConfiguration::FromEnvironment(
      Env({{"ZEROBUS_TRANSPORT", "arrow_flight"}, {"ZEROBUS_IPC_COMPRESSION", "lz4_frame"}}));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->transport, Transport::kArrowFlight);
  EXPECT_EQ(env->ipc_compression, IpcCompression::kLz4Frame);
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_TRANSPORT", "flight"}})).status(),
      "environment variable ZEROBUS_TRANSPORT: 'flight' is not one of protobuf, json, "
      "arrow_flight");
  ExpectConfigError(
      WrapperConfiguration::FromEnvironment(Env({{"ZEROBUS_IPC_COMPRESSION", "gzip"}})).status(),
      "environment variable ZEROBUS_IPC_COMPRESSION: 'gzip' is not one of none, lz4_frame, zstd");

  auto yaml = WrapperConfiguration::FromYamlString(
      "stream:\n  transport: json\n  ipc_compression: none\n", "t.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_EQ(yaml->transport, Transport::kJson);
  yaml = WrapperConfiguration::FromYamlString(
      "stream:\n  transport: arrow_flight\n  ipc_compression: zstd\n", "t.yaml");
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  EXPECT_EQ(yaml->transport, Transport::kArrowFlight);
  EXPECT_EQ(yaml->ipc_compression, IpcCompression::kZstd);
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("stream:\n  transport: http\n", "t.yaml").status(),
      "t.yaml:2: stream.transport: 'http' is not one of protobuf, json, arrow_flight");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("stream:\n  ipc_compression: lz4\n", "t.yaml").status(),
      "t.yaml:2: stream.ipc_compression: 'lz4' is not one of none, lz4_frame, zstd");
  ExpectConfigError(
      WrapperConfiguration::FromYamlString("stream:\n  transport: null\n", "t.yaml").status(),
      "stream.transport: must not be null");
  ExpectConfigError(WrapperConfiguration::FromYamlString("transport: json\n", "t.yaml").status(),
                    "t.yaml:1: transport: unknown key");

  auto c = Good();
  c.transport = Transport::kArrowFlight;
  c.ipc_compression = IpcCompression::kZstd;
  EXPECT_THAT(c.ToString(), HasSubstr("transport=arrow_flight, ipc_compression=zstd"));
}

}  // namespace
}  // namespace arrow_zerobus
