#include "arrow_zerobus/telemetry.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/result.h"
#include "common/http_client.h"
#include "telemetry/otlp_json_internal.h"

namespace arrow_zerobus {

namespace ti = telemetry_internal;

TelemetryOptions TelemetryOptions::FromConfig(const WrapperConfiguration& config) {
  TelemetryOptions o;
  o.table_name = config.table_name;
  if (config.observability_config) {
    const auto& oc = *config.observability_config;
    o.endpoint = oc.endpoint;
    o.output_dir = oc.output_dir;
    o.export_interval = std::chrono::seconds(oc.write_interval_secs);
    o.log_level = oc.log_level;
  }
  return o;
}

namespace {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string JoinPath(std::string base, const char* path) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + path;
}

int64_t UnixNanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// POSTs one JSON body; any failure (connect, timeout, non-2xx) is an IOError naming the URL.
// Loopback collectors are never reached through a proxy (the HTTP client's rule); other proxy
// settings apply.
arrow::Status PostJson(const std::string& url, const std::string& body,
                       std::chrono::milliseconds timeout) {
  internal::HttpRequest request;
  request.url = url;
  request.post = true;
  request.headers = {{"Content-Type", "application/json"}};
  request.body = body;
  request.timeout = timeout;
  request.user_agent = "arrow_zerobus-otlp";
  auto response = internal::HttpCall(request);
  if (!response.ok()) {
    return arrow::Status::IOError("OTLP export to ", url, ": ", response.status().message());
  }
  const long code = response->status;
  if (code < 200 || code >= 300) {
    return arrow::Status::IOError("OTLP export to ", url, " answered HTTP ", code);
  }
  return arrow::Status::OK();
}

arrow::Status AppendLine(const std::string& dir, const char* file, const std::string& body) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = (std::filesystem::path(dir) / file).string();
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << body << '\n';
  out.flush();
  if (!out) return arrow::Status::IOError("cannot append telemetry to '", path, "'");
  return arrow::Status::OK();
}

arrow::Status CheckUrl(const std::string& url, const char* what) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return ConfigurationError(std::string(what) + ": '" + url +
                              "' must start with http:// or https://");
  }
  return arrow::Status::OK();
}

}  // namespace

struct Telemetry::Impl {
  TelemetryOptions options;
  ti::ResourceInfo resource;
  std::optional<std::string> metrics_url;
  std::optional<std::string> traces_url;
  int64_t start_unix_nano = 0;

  mutable std::mutex mu;  // guards the fields below; never held during I/O
  TelemetrySnapshot stats;
  std::vector<ti::SpanData> spans;
  std::mt19937_64 rng{std::random_device{}()};
  bool failing = false;  // for logging once per failure streak

  std::mutex export_mu;  // one export at a time
  std::mutex thread_mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread exporter;

  bool has_destination() const { return metrics_url.has_value() || options.output_dir.has_value(); }

  void CountExport(const arrow::Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    if (st.ok()) {
      ++stats.exports_succeeded;
      failing = false;
      return;
    }
    ++stats.export_failures;
    stats.last_export_error = st.message();
    if (!failing && options.log_level <= LogLevel::kWarn) {
      std::cerr << "arrow_zerobus telemetry: " << st.message()
                << " (sends are not affected; further failures are counted silently)\n";
    }
    failing = true;
  }

  arrow::Status ExportOnce() {
    std::lock_guard<std::mutex> export_lock(export_mu);
    TelemetrySnapshot snapshot;
    std::vector<ti::SpanData> batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      snapshot = stats;
      batch.swap(spans);
    }
    const int64_t now = UnixNanos(std::chrono::system_clock::now());
    arrow::Status first;
    auto deliver = [&](const std::optional<std::string>& url, const char* file,
                       const std::string& body) {
      arrow::Status st;
      if (url) st = PostJson(*url, body, options.export_timeout);
      if (options.output_dir) st &= AppendLine(*options.output_dir, file, body);
      CountExport(st);
      if (first.ok()) first = st;
      return st;
    };
    // Its status is kept in `first`.
    (void)deliver(metrics_url, "otlp-metrics.jsonl",
                  ti::MetricsJson(resource, snapshot, start_unix_nano, now));
    if (!batch.empty()) {
      const arrow::Status st =
          deliver(traces_url, "otlp-traces.jsonl", ti::TracesJson(resource, batch));
      std::lock_guard<std::mutex> lock(mu);
      if (st.ok()) {
        stats.spans_exported += static_cast<int64_t>(batch.size());
      } else {
        stats.spans_dropped += static_cast<int64_t>(batch.size());
      }
    }
    return first;
  }

  void Loop() {
    std::unique_lock<std::mutex> lock(thread_mu);
    while (!stopping) {
      cv.wait_for(lock, options.export_interval, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      (void)ExportOnce();  // counted in the snapshot; never surfaces to senders
      lock.lock();
    }
  }
};

Telemetry::Telemetry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Telemetry::~Telemetry() {
  if (impl_) Shutdown();
}

arrow::Result<std::unique_ptr<Telemetry>> Telemetry::Start(TelemetryOptions options) {
  if (options.export_interval.count() <= 0) {
    return ConfigurationError("observability_config.write_interval_secs must be positive");
  }
  if (options.export_timeout.count() <= 0) {
    return ConfigurationError("telemetry export_timeout must be positive");
  }
  if (options.max_queued_spans < 0) {
    return ConfigurationError("telemetry max_queued_spans must not be negative");
  }
  for (size_t i = 0; i < options.latency_bounds_ms.size(); ++i) {
    if (!std::isfinite(options.latency_bounds_ms[i]) ||
        (i > 0 && options.latency_bounds_ms[i] <= options.latency_bounds_ms[i - 1])) {
      return ConfigurationError("telemetry latency_bounds_ms must be finite and ascending");
    }
  }
  auto impl = std::make_unique<Impl>();
  if (options.use_environment && options.service_name == TelemetryOptions().service_name) {
    if (auto name = Env("OTEL_SERVICE_NAME")) options.service_name = *name;
  }
  if (options.endpoint) {
    ARROW_RETURN_NOT_OK(CheckUrl(*options.endpoint, "observability_config.endpoint"));
    impl->metrics_url = JoinPath(*options.endpoint, "/v1/metrics");
    impl->traces_url = JoinPath(*options.endpoint, "/v1/traces");
  } else if (options.use_environment) {
    // OTLP exporter spec: the per-signal variables are full URLs; the generic one is a base.
    const auto base = Env("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (auto m = Env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")) {
      impl->metrics_url = *m;
    } else if (base) {
      impl->metrics_url = JoinPath(*base, "/v1/metrics");
    }
    if (auto t = Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
      impl->traces_url = *t;
    } else if (base) {
      impl->traces_url = JoinPath(*base, "/v1/traces");
    }
    if (impl->metrics_url) {
      ARROW_RETURN_NOT_OK(CheckUrl(*impl->metrics_url, "OTLP metrics endpoint"));
    }
    if (impl->traces_url) ARROW_RETURN_NOT_OK(CheckUrl(*impl->traces_url, "OTLP traces endpoint"));
  }
  impl->resource = {options.service_name, options.table_name};
  impl->stats.latency.bounds_ms = options.latency_bounds_ms;
  impl->stats.latency.bucket_counts.assign(options.latency_bounds_ms.size() + 1, 0);
  impl->start_unix_nano = UnixNanos(std::chrono::system_clock::now());
  impl->options = std::move(options);
  if (impl->has_destination() || impl->traces_url) {
    Impl* raw = impl.get();
    impl->exporter = std::thread([raw] { raw->Loop(); });
  }
  return std::unique_ptr<Telemetry>(new Telemetry(std::move(impl)));
}

void Telemetry::RecordSend(const TransmissionResult& result, TimePoint start, TimePoint end,
                           int64_t replayed_records) {
  const double latency_ms =
      result.latency_ms.value_or(std::chrono::duration<double, std::milli>(end - start).count());
  // Work that needs no lock first: the per-kind counts and the span's attributes.
  const ErrorStatistics errors = result.Statistics();
  ti::SpanData span;
  span.name = "zerobus.send_batch";
  span.start_unix_nano = UnixNanos(start);
  span.end_unix_nano = std::max(UnixNanos(end), span.start_unix_nano);
  span.attributes = {{"zerobus.table", impl_->options.table_name},
                     {"zerobus.rows", result.total_rows},
                     {"zerobus.rows.successful", result.successful_count},
                     {"zerobus.rows.failed", result.failed_count},
                     {"zerobus.bytes", result.batch_size_bytes},
                     {"zerobus.attempts", static_cast<int64_t>(result.attempts)},
                     {"zerobus.replayed_records", replayed_records},
                     {"zerobus.latency_ms", latency_ms}};
  span.error = !result.success || result.failed_count > 0;
  if (span.error) span.status_message = result.error.value_or("failed rows");

  std::lock_guard<std::mutex> lock(impl_->mu);
  TelemetrySnapshot& s = impl_->stats;
  ++s.batches;
  if (!result.success) ++s.batches_failed;
  s.rows += result.total_rows;
  s.rows_successful += result.successful_count;
  s.rows_failed += result.failed_count;
  for (const auto& [kind, count] : errors.error_type_counts) s.rows_failed_by_kind[kind] += count;
  s.bytes += result.batch_size_bytes;
  s.retries += std::max<int64_t>(0, result.attempts - 1);
  s.replayed_records += replayed_records;
  LatencyHistogram& h = s.latency;
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(h.bounds_ms.begin(), h.bounds_ms.end(), latency_ms) - h.bounds_ms.begin());
  ++h.bucket_counts[bucket];  // OTLP buckets are (bound[i-1], bound[i]]
  h.min_ms = h.count == 0 ? latency_ms : std::min(h.min_ms, latency_ms);
  h.max_ms = h.count == 0 ? latency_ms : std::max(h.max_ms, latency_ms);
  ++h.count;
  h.sum_ms += latency_ms;
  ++s.spans_recorded;
  if (static_cast<int64_t>(impl_->spans.size()) >= impl_->options.max_queued_spans) {
    ++s.spans_dropped;
    return;
  }
  for (auto& b : span.trace_id) b = static_cast<uint8_t>(impl_->rng());
  for (auto& b : span.span_id) b = static_cast<uint8_t>(impl_->rng());
  span.trace_id[0] |= 1;  // all-zero ids are invalid in OTLP
  span.span_id[0] |= 1;
  impl_->spans.push_back(std::move(span));
}

void Telemetry::SetInFlight(int64_t requests, int64_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stats.in_flight_requests = requests;
  impl_->stats.in_flight_bytes = bytes;
}

TelemetrySnapshot Telemetry::Snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

arrow::Status Telemetry::ExportNow() {
  if (!impl_->has_destination() && !impl_->traces_url) return arrow::Status::OK();
  return impl_->ExportOnce();
}

void Telemetry::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->thread_mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->exporter.joinable()) {
    impl_->exporter.join();
    (void)impl_->ExportOnce();  // the last numbers and spans
  }
}

const std::optional<std::string>& Telemetry::metrics_url() const { return impl_->metrics_url; }
const std::optional<std::string>& Telemetry::traces_url() const { return impl_->traces_url; }

}  // namespace arrow_zerobus
