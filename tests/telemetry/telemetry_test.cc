#include "arrow_zerobus/telemetry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/result.h"
#include "debug/python_runner.h"

namespace arrow_zerobus {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Clock = std::chrono::system_clock;

// A local OTLP/HTTP collector on loopback that keeps every body it receives.
class Collector {
 public:
  explicit Collector(int status = 200, std::chrono::milliseconds delay = {}) {
    auto handler = [this, status, delay](const char* signal) {
      return [this, status, delay, signal](const httplib::Request& req, httplib::Response& res) {
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        {
          std::lock_guard<std::mutex> lock(mu_);
          bodies_[signal].push_back(req.body);
          content_types_.push_back(req.get_header_value("Content-Type"));
        }
        res.status = status;
        res.set_content("{}", "application/json");
      };
    };
    server_.Post("/v1/metrics", handler("metrics"));
    server_.Post("/v1/traces", handler("traces"));
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~Collector() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::vector<std::string> bodies(const std::string& signal) {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_[signal];
  }
  std::vector<std::string> content_types() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  // Waits until `n` bodies of `signal` arrived (or ~5 s passed).
  bool WaitFor(const std::string& signal, size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (bodies(signal).size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> bodies_;
  std::vector<std::string> content_types_;
};

TelemetryOptions Options(const std::optional<std::string>& endpoint) {
  TelemetryOptions o = TelemetryOptions::Defaults();
  o.table_name = "main.default.events";
  o.endpoint = endpoint;
  o.use_environment = false;
  o.export_interval = std::chrono::hours(1);  // exports only when the test asks
  o.export_timeout = std::chrono::milliseconds(2000);
  o.log_level = LogLevel::kOff;
  return o;
}

TransmissionResult FullSuccess(int64_t rows, int64_t bytes, double latency_ms) {
  std::vector<int64_t> ok;
  for (int64_t i = 0; i < rows; ++i) ok.push_back(i);
  auto r = TransmissionResult::FromRowOutcomes(rows, ok, {}).ValueOrDie();
  r.batch_size_bytes = bytes;
  r.latency_ms = latency_ms;
  return r;
}

TransmissionResult Partial() {
  auto r = TransmissionResult::FromRowOutcomes(
               10, {0, 1, 2, 4, 5, 6, 7, 9},
               {{3, "Conversion error: column 'v' row 3: out of range"},
                {8, "Conversion error: column 'v' row 8: out of range"}})
               .ValueOrDie();
  r.attempts = 2;
  r.batch_size_bytes = 800;
  r.latency_ms = 40.0;
  return r;
}

TransmissionResult WholeFailure() {
  auto r = TransmissionResult::WholeBatchFailure(
      5, MakeError(ErrorKind::kRetryExhausted, false, "UNAVAILABLE after 5 attempts"), 5);
  r.latency_ms = 700.0;
  return r;
}

nlohmann::json CheckWithPython(const std::string& kind, const std::string& body) {
  const auto path = fs::temp_directory_path() /
                    ("az_otlp_" + std::to_string(::getpid()) + "_" + kind + ".json");
  { std::ofstream(path, std::ios::binary) << body; }
  const auto r = testing::RunPython(AZ_OTLP_CHECK_SCRIPT, {kind, path.string()});
  fs::remove(path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const size_t start = r.output.rfind("\n{");
  auto json = nlohmann::json::parse(r.output.substr(start == std::string::npos ? 0 : start + 1),
                                    nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << r.output;
  return json;
}

int64_t PointValue(const nlohmann::json& metric, const std::string& key = "",
                   const std::string& value = "") {
  for (const auto& p : metric["points"]) {
    if (key.empty() || (p["attributes"].contains(key) && p["attributes"][key] == value)) {
      return p["value"].get<int64_t>();
    }
  }
  ADD_FAILURE() << "no point with " << key << "=" << value << " in " << metric.dump();
  return -1;
}

TEST(Telemetry, OtlpJsonParsedByOfficialProto) {
  Collector collector;
  auto t = Telemetry::Start(Options(collector.url()));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto start = Clock::now();
  (*t)->RecordSend(FullSuccess(10, 1000, 3.0), start, start + std::chrono::milliseconds(3));
  (*t)->RecordSend(Partial(), start, start + std::chrono::milliseconds(40), /*replayed=*/4);
  (*t)->RecordSend(WholeFailure(), start, start + std::chrono::milliseconds(700));
  (*t)->SetInFlight(7, 4096);
  ASSERT_TRUE((*t)->ExportNow().ok());
  ASSERT_EQ(collector.bodies("metrics").size(), 1u);
  ASSERT_EQ(collector.bodies("traces").size(), 1u);
  for (const auto& ct : collector.content_types()) EXPECT_EQ(ct, "application/json");

  const auto m = CheckWithPython("metrics", collector.bodies("metrics")[0]);
  EXPECT_TRUE(m["problems"].empty()) << m["problems"].dump();
  EXPECT_EQ(m["resource"]["service.name"], "arrow_zerobus");
  const auto& metrics = m["metrics"];
  EXPECT_EQ(PointValue(metrics["zerobus.batches"]), 3);
  EXPECT_EQ(metrics["zerobus.batches"]["monotonic"], true);
  EXPECT_EQ(metrics["zerobus.batches"]["temporality"], 2);  // cumulative
  EXPECT_EQ(PointValue(metrics["zerobus.batches.failed"]), 1);
  EXPECT_EQ(PointValue(metrics["zerobus.rows"], "outcome", "successful"), 18);
  EXPECT_EQ(PointValue(metrics["zerobus.rows"], "outcome", "failed"), 7);
  EXPECT_EQ(PointValue(metrics["zerobus.rows.failed"], "error.type", "ConversionError"), 2);
  EXPECT_EQ(PointValue(metrics["zerobus.rows.failed"], "error.type", "RetryExhausted"), 5);
  EXPECT_EQ(PointValue(metrics["zerobus.bytes"]), 1800);
  EXPECT_EQ(metrics["zerobus.bytes"]["unit"], "By");
  EXPECT_EQ(PointValue(metrics["zerobus.retries"]), 1 + 4);
  EXPECT_EQ(PointValue(metrics["zerobus.replayed_records"]), 4);
  EXPECT_EQ(metrics["zerobus.in_flight.requests"]["kind"], "gauge");
  EXPECT_EQ(PointValue(metrics["zerobus.in_flight.requests"]), 7);
  EXPECT_EQ(PointValue(metrics["zerobus.in_flight.bytes"]), 4096);
  EXPECT_EQ(metrics["zerobus.batches"]["points"][0]["attributes"]["zerobus.table"],
            "main.default.events");
  const auto& h = metrics["zerobus.send.duration"];
  EXPECT_EQ(h["kind"], "histogram");
  EXPECT_EQ(h["count"], 3);
  EXPECT_DOUBLE_EQ(h["sum"].get<double>(), 743.0);
  EXPECT_DOUBLE_EQ(h["min"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(h["max"].get<double>(), 700.0);
  // Bounds 1,2,5,10,25,50,100,250,500,1000,...: 3 ms -> (2,5], 40 -> (25,50], 700 -> (500,1000].
  const auto buckets = h["bucket_counts"].get<std::vector<int64_t>>();
  ASSERT_EQ(buckets.size(), 15u);
  EXPECT_EQ(buckets[2], 1);
  EXPECT_EQ(buckets[5], 1);
  EXPECT_EQ(buckets[9], 1);

  const auto tr = CheckWithPython("traces", collector.bodies("traces")[0]);
  EXPECT_TRUE(tr["problems"].empty()) << tr["problems"].dump();
  ASSERT_EQ(tr["spans"].size(), 3u);
  std::set<int64_t> rows;
  for (const auto& s : tr["spans"]) {
    EXPECT_EQ(s["name"], "zerobus.send_batch");
    EXPECT_EQ(s["kind"], 3);  // SPAN_KIND_CLIENT
    EXPECT_EQ(s["trace_id_len"], 16);
    EXPECT_EQ(s["span_id_len"], 8);
    EXPECT_EQ(s["attributes"]["zerobus.table"], "main.default.events");
    rows.insert(s["attributes"]["zerobus.rows"].get<int64_t>());
  }
  EXPECT_EQ(rows, (std::set<int64_t>{5, 10}));
  EXPECT_EQ(tr["spans"][0]["status_code"], 1);  // OK
  EXPECT_EQ(tr["spans"][0]["duration_ns"], 3'000'000);
  EXPECT_EQ(tr["spans"][1]["status_code"], 2);  // ERROR: failed rows
  EXPECT_EQ(tr["spans"][2]["status_code"], 2);
  EXPECT_THAT(tr["spans"][2]["status_message"].get<std::string>(),
              HasSubstr("Retry exhausted: UNAVAILABLE"));
  EXPECT_EQ(tr["spans"][1]["attributes"]["zerobus.attempts"], 2);
  EXPECT_EQ(tr["spans"][1]["attributes"]["zerobus.replayed_records"], 4);

  const auto snap = (*t)->Snapshot();
  EXPECT_EQ(snap.spans_exported, 3);
  EXPECT_EQ(snap.exports_succeeded, 2);
  EXPECT_EQ(snap.export_failures, 0);
}

TEST(Telemetry, BackgroundThreadExportsOnInterval) {
  Collector collector;
  auto o = Options(collector.url());
  o.export_interval = std::chrono::milliseconds(50);
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  const auto now = Clock::now();
  (*t)->RecordSend(FullSuccess(4, 40, 1.0), now, now);
  // No ExportNow(): only the background thread can deliver these.
  EXPECT_TRUE(collector.WaitFor("traces", 1));
  EXPECT_TRUE(collector.WaitFor("metrics", 2));
  (*t)->Shutdown();
  const auto m = CheckWithPython("metrics", collector.bodies("metrics").back());
  EXPECT_EQ(PointValue(m["metrics"]["zerobus.rows"], "outcome", "successful"), 4);
}

TEST(Telemetry, ShutdownExportsTheLastNumbers) {
  Collector collector;
  auto t = Telemetry::Start(Options(collector.url()));
  ASSERT_TRUE(t.ok());
  const auto now = Clock::now();
  (*t)->RecordSend(FullSuccess(2, 20, 1.0), now, now);
  EXPECT_TRUE(collector.bodies("metrics").empty());
  (*t)->Shutdown();
  EXPECT_EQ(collector.bodies("metrics").size(), 1u);
  EXPECT_EQ(collector.bodies("traces").size(), 1u);
  (*t)->Shutdown();  // idempotent
  EXPECT_EQ(collector.bodies("metrics").size(), 1u);
}

TEST(Telemetry, OtelEnvironmentEndpointHonoured) {
  Collector collector;
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", (collector.url() + "/").c_str(), 1);
  ::setenv("OTEL_SERVICE_NAME", "env-service", 1);
  auto o = Options(std::nullopt);
  o.use_environment = true;
  auto t = Telemetry::Start(o);
  ::unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  ::unsetenv("OTEL_SERVICE_NAME");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->metrics_url(), collector.url() + "/v1/metrics");
  EXPECT_EQ((*t)->traces_url(), collector.url() + "/v1/traces");
  ASSERT_TRUE((*t)->ExportNow().ok());
  ASSERT_EQ(collector.bodies("metrics").size(), 1u);
  const auto m = CheckWithPython("metrics", collector.bodies("metrics")[0]);
  EXPECT_EQ(m["resource"]["service.name"], "env-service");
}

TEST(Telemetry, ConfiguredEndpointWinsOverEnvironment) {
  Collector configured;
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
  auto o = Options(configured.url());
  o.use_environment = true;
  auto t = Telemetry::Start(o);
  ::unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->metrics_url(), configured.url() + "/v1/metrics");
}

// A loopback port with nothing listening: bind a socket (no listen), note the port, close it.
int DeadPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Telemetry, DeadEndpointNeverAffectsCallers) {
  auto o = Options("http://127.0.0.1:" + std::to_string(DeadPort()));
  o.export_interval = std::chrono::milliseconds(5);  // the exporter fails all the time
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  const auto r = FullSuccess(3, 30, 1.0);
  auto slowest = std::chrono::nanoseconds(0);
  const auto loop_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {
    const auto a = std::chrono::steady_clock::now();
    (*t)->RecordSend(r, Clock::now(), Clock::now());
    slowest = std::max(slowest, std::chrono::steady_clock::now() - a);
  }
  const auto total = std::chrono::steady_clock::now() - loop_start;
  EXPECT_LT(total, std::chrono::seconds(2));
  EXPECT_LT(slowest, std::chrono::milliseconds(300));
  const auto st = (*t)->ExportNow();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("OTLP export to http://127.0.0.1:"));
  const auto snap = (*t)->Snapshot();
  EXPECT_EQ(snap.batches, 2000);
  EXPECT_EQ(snap.rows_successful, 6000);
  EXPECT_GE(snap.export_failures, 1);
  EXPECT_EQ(snap.exports_succeeded, 0);
  ASSERT_TRUE(snap.last_export_error.has_value());
  EXPECT_THAT(*snap.last_export_error, HasSubstr("failed"));
}

TEST(Telemetry, SlowCollectorDoesNotBlockRecording) {
  Collector slow(200, std::chrono::milliseconds(1500));
  auto o = Options(slow.url());
  o.export_timeout = std::chrono::milliseconds(1000);
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  (*t)->RecordSend(FullSuccess(1, 1, 1.0), Clock::now(), Clock::now());
  std::atomic<bool> done{false};
  arrow::Status export_status;
  std::thread exporter([&] {
    export_status = (*t)->ExportNow();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int during = 0;
  auto slowest = std::chrono::nanoseconds(0);
  while (!done) {
    const auto a = std::chrono::steady_clock::now();
    (*t)->RecordSend(FullSuccess(1, 1, 1.0), Clock::now(), Clock::now());
    (void)(*t)->Snapshot();
    slowest = std::max(slowest, std::chrono::steady_clock::now() - a);
    ++during;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  exporter.join();
  EXPECT_GT(during, 20);  // recording went on while the export hung for a second
  EXPECT_LT(slowest, std::chrono::milliseconds(300));
  ASSERT_FALSE(export_status.ok());
  EXPECT_THAT(export_status.message(), HasSubstr("failed"));
  EXPECT_GE((*t)->Snapshot().export_failures, 1);
}

TEST(Telemetry, HttpErrorIsCountedAndSpansDropped) {
  Collector broken(500);
  auto t = Telemetry::Start(Options(broken.url()));
  ASSERT_TRUE(t.ok());
  (*t)->RecordSend(FullSuccess(1, 1, 1.0), Clock::now(), Clock::now());
  const auto st = (*t)->ExportNow();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("answered HTTP 500"));
  const auto snap = (*t)->Snapshot();
  EXPECT_EQ(snap.export_failures, 2);  // metrics and traces
  EXPECT_EQ(snap.spans_dropped, 1);
  EXPECT_EQ(snap.spans_exported, 0);
}

TEST(Telemetry, OutputDirGetsJsonLines) {
  const auto dir = fs::temp_directory_path() / ("az_otlp_dir_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto o = Options(std::nullopt);
  o.output_dir = dir.string();
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  (*t)->RecordSend(Partial(), Clock::now(), Clock::now());
  ASSERT_TRUE((*t)->ExportNow().ok());
  ASSERT_TRUE((*t)->ExportNow().ok());
  std::ifstream in(dir / "otlp-metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  const auto m = CheckWithPython("metrics", lines[1]);
  EXPECT_TRUE(m["problems"].empty());
  EXPECT_EQ(PointValue(m["metrics"]["zerobus.rows.failed"], "error.type", "ConversionError"), 2);
  std::ifstream traces(dir / "otlp-traces.jsonl");
  std::string span_line;
  ASSERT_TRUE(static_cast<bool>(std::getline(traces, span_line)));
  const auto tr = CheckWithPython("traces", span_line);
  EXPECT_EQ(tr["spans"].size(), 1u);
  fs::remove_all(dir);
}

TEST(Telemetry, SnapshotWithoutAnyExporter) {
  auto t = Telemetry::Start(Options(std::nullopt));
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE((*t)->metrics_url().has_value());
  const auto now = Clock::now();
  (*t)->RecordSend(FullSuccess(10, 100, 0.5), now, now);
  (*t)->RecordSend(WholeFailure(), now, now, 2);
  (*t)->RecordSend(FullSuccess(1, 10, 99999.0), now, now);
  (*t)->SetInFlight(3, 300);
  const auto s = (*t)->Snapshot();
  EXPECT_EQ(s.batches, 3);
  EXPECT_EQ(s.batches_failed, 1);
  EXPECT_EQ(s.rows, 16);
  EXPECT_EQ(s.rows_successful, 11);
  EXPECT_EQ(s.rows_failed, 5);
  EXPECT_EQ(s.rows_failed_by_kind.at("RetryExhausted"), 5);
  EXPECT_EQ(s.bytes, 110);
  EXPECT_EQ(s.retries, 4);
  EXPECT_EQ(s.replayed_records, 2);
  EXPECT_EQ(s.in_flight_requests, 3);
  EXPECT_EQ(s.latency.count, 3);
  EXPECT_EQ(s.latency.bucket_counts.front(), 1);  // 0.5 ms <= 1
  EXPECT_EQ(s.latency.bucket_counts.back(), 1);   // beyond the last bound
  EXPECT_DOUBLE_EQ(s.latency.min_ms, 0.5);
  EXPECT_EQ(s.spans_recorded, 3);
  EXPECT_TRUE((*t)->ExportNow().ok());  // nowhere to export: a no-op
  EXPECT_EQ((*t)->Snapshot().exports_succeeded, 0);
}

TEST(Telemetry, SpanQueueIsBounded) {
  auto o = Options(std::nullopt);
  o.max_queued_spans = 2;
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < 5; ++i) (*t)->RecordSend(FullSuccess(1, 1, 1.0), Clock::now(), Clock::now());
  const auto s = (*t)->Snapshot();
  EXPECT_EQ(s.spans_recorded, 5);
  EXPECT_EQ(s.spans_dropped, 3);
  EXPECT_EQ(s.batches, 5);  // metrics still count every send
}

TEST(Telemetry, StartRejectsBadOptions) {
  auto o = Options(std::nullopt);
  o.export_interval = std::chrono::milliseconds(0);
  EXPECT_THAT(Telemetry::Start(o).status().message(),
              HasSubstr("write_interval_secs must be positive"));
  o = Options(std::nullopt);
  o.latency_bounds_ms = {5, 1};
  EXPECT_THAT(Telemetry::Start(o).status().message(), HasSubstr("ascending"));
  o = Options("localhost:4318");
  EXPECT_THAT(Telemetry::Start(o).status().message(),
              HasSubstr("observability_config.endpoint: 'localhost:4318' must start with http"));
  o = Options(std::nullopt);
  o.export_timeout = std::chrono::milliseconds(-1);
  EXPECT_THAT(Telemetry::Start(o).status().message(), HasSubstr("export_timeout"));
}

TEST(Telemetry, OptionsFromConfig) {
  auto c = WrapperConfiguration::Make("https://h", "c.s.t");
  c.observability_enabled = true;
  c.observability_config = ObservabilityConfig::Defaults();
  c.observability_config->endpoint = "http://collector:4318";
  c.observability_config->write_interval_secs = 7;
  c.observability_config->log_level = LogLevel::kError;
  const auto o = TelemetryOptions::FromConfig(c);
  EXPECT_EQ(o.table_name, "c.s.t");
  EXPECT_EQ(o.endpoint, std::optional<std::string>("http://collector:4318"));
  EXPECT_EQ(o.export_interval, std::chrono::seconds(7));
  EXPECT_EQ(o.log_level, LogLevel::kError);
}

TEST(Telemetry, ConcurrentRecordingCountsEverything) {
  Collector collector;
  auto o = Options(collector.url());
  o.export_interval = std::chrono::milliseconds(10);
  auto t = Telemetry::Start(o);
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 500; ++j) {
        (*t)->RecordSend(FullSuccess(2, 20, 1.0), Clock::now(), Clock::now());
      }
    });
  }
  for (auto& th : threads) th.join();
  (*t)->Shutdown();
  const auto s = (*t)->Snapshot();
  EXPECT_EQ(s.batches, 2000);
  EXPECT_EQ(s.rows_successful, 4000);
  EXPECT_EQ(s.spans_exported + s.spans_dropped, 2000);
  const auto m = CheckWithPython("metrics", collector.bodies("metrics").back());
  EXPECT_EQ(PointValue(m["metrics"]["zerobus.batches"]), 2000);
}

}  // namespace
}  // namespace arrow_zerobus
