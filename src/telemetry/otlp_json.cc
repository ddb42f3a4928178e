#include <cmath>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/version.h"
#include "telemetry/otlp_json_internal.h"

namespace arrow_zerobus::telemetry_internal {

namespace {

using nlohmann::json;

// OTLP enums (opentelemetry-proto): AggregationTemporality, SpanKind, StatusCode.
constexpr int kTemporalityCumulative = 2;
constexpr int kSpanKindClient = 3;
constexpr int kStatusOk = 1;
constexpr int kStatusError = 2;

std::string Int(int64_t v) { return std::to_string(v); }

json Value(const AttributeValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return {{"stringValue", x}};
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return {{"intValue", Int(x)}};
        } else if constexpr (std::is_same_v<T, double>) {
          return {{"doubleValue", std::isfinite(x) ? x : 0.0}};
        } else {
          return {{"boolValue", x}};
        }
      },
      v);
}

json Attrs(const Attributes& attributes) {
  json out = json::array();
  for (const auto& [key, value] : attributes) out.push_back({{"key", key}, {"value", Value(value)}});
  return out;
}

json Resource(const ResourceInfo& r) {
  return {{"attributes", Attrs({{"service.name", r.service_name},
                                {"telemetry.sdk.name", std::string("arrow_zerobus")},
                                {"telemetry.sdk.language", std::string("cpp")}})}};
}

json Scope() {
  return {{"name", "arrow_zerobus"}, {"version", std::string(kVersion)}};
}

struct MetricBuilder {
  const ResourceInfo& resource;
  std::string start;
  std::string now;
  json metrics = json::array();

  Attributes Base(Attributes extra = {}) const {
    Attributes a = {{"zerobus.table", resource.table_name}};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  json Point(int64_t value, Attributes attributes) const {
    return {{"attributes", Attrs(attributes)},
            {"startTimeUnixNano", start},
            {"timeUnixNano", now},
            {"asInt", Int(value)}};
  }

  void Counter(const char* name, const char* unit, const char* description, json points) {
    metrics.push_back({{"name", name},
                       {"unit", unit},
                       {"description", description},
                       {"sum",
                        {{"dataPoints", std::move(points)},
                         {"aggregationTemporality", kTemporalityCumulative},
                         {"isMonotonic", true}}}});
  }
  void Counter(const char* name, const char* unit, const char* description, int64_t value) {
    Counter(name, unit, description, json::array({Point(value, Base())}));
  }

  void Gauge(const char* name, const char* unit, const char* description, int64_t value) {
    json point = {{"attributes", Attrs(Base())}, {"timeUnixNano", now}, {"asInt", Int(value)}};
    metrics.push_back({{"name", name},
                       {"unit", unit},
                       {"description", description},
                       {"gauge", {{"dataPoints", json::array({point})}}}});
  }
};

}  // namespace

std::string Hex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

std::string MetricsJson(const ResourceInfo& resource, const TelemetrySnapshot& s,
                        int64_t start_unix_nano, int64_t now_unix_nano) {
  MetricBuilder m{resource, Int(start_unix_nano), Int(now_unix_nano)};
  m.Counter("zerobus.batches", "{batch}", "send_batch calls", s.batches);
  m.Counter("zerobus.batches.failed", "{batch}", "send_batch calls that delivered no row",
            s.batches_failed);
  m.Counter("zerobus.rows", "{row}", "rows given to send_batch, by outcome",
            json::array({m.Point(s.rows_successful, m.Base({{"outcome", std::string("successful")}})),
                         m.Point(s.rows_failed, m.Base({{"outcome", std::string("failed")}}))}));
  json by_kind = json::array();
  for (const auto& [kind, rows] : s.rows_failed_by_kind) {
    by_kind.push_back(m.Point(rows, m.Base({{"error.type", kind}})));
  }
  if (!by_kind.empty()) {
    m.Counter("zerobus.rows.failed", "{row}", "failed rows by error kind", std::move(by_kind));
  }
  m.Counter("zerobus.bytes", "By", "encoded bytes sent", s.bytes);
  m.Counter("zerobus.retries", "{attempt}", "attempts beyond the first", s.retries);
  m.Counter("zerobus.replayed_records", "{record}", "records sent again after stream recovery",
            s.replayed_records);
  m.Gauge("zerobus.in_flight.requests", "{request}", "unacknowledged requests",
          s.in_flight_requests);
  m.Gauge("zerobus.in_flight.bytes", "By", "bytes of unacknowledged requests", s.in_flight_bytes);
  m.Counter("zerobus.telemetry.export_failures", "{export}", "failed telemetry exports",
            s.export_failures);

  const LatencyHistogram& h = s.latency;
  json buckets = json::array();
  for (int64_t c : h.bucket_counts) buckets.push_back(Int(c));
  json point = {{"attributes", Attrs(m.Base())},
                {"startTimeUnixNano", m.start},
                {"timeUnixNano", m.now},
                {"count", Int(h.count)},
                {"sum", h.sum_ms},
                {"bucketCounts", std::move(buckets)},
                {"explicitBounds", h.bounds_ms}};
  if (h.count > 0) {
    point["min"] = h.min_ms;
    point["max"] = h.max_ms;
  }
  m.metrics.push_back({{"name", "zerobus.send.duration"},
                       {"unit", "ms"},
                       {"description", "send_batch latency"},
                       {"histogram",
                        {{"dataPoints", json::array({std::move(point)})},
                         {"aggregationTemporality", kTemporalityCumulative}}}});

  json body = {{"resourceMetrics",
                json::array({{{"resource", Resource(resource)},
                              {"scopeMetrics",
                               json::array({{{"scope", Scope()}, {"metrics", std::move(m.metrics)}}})}}})}};
  return body.dump();
}

std::string TracesJson(const ResourceInfo& resource, const std::vector<SpanData>& spans) {
  json out = json::array();
  for (const SpanData& span : spans) {
    json status = {{"code", span.error ? kStatusError : kStatusOk}};
    if (span.error && !span.status_message.empty()) status["message"] = span.status_message;
    out.push_back({{"traceId", Hex(span.trace_id.data(), span.trace_id.size())},
                   {"spanId", Hex(span.span_id.data(), span.span_id.size())},
                   {"name", span.name},
                   {"kind", kSpanKindClient},
                   {"startTimeUnixNano", Int(span.start_unix_nano)},
                   {"endTimeUnixNano", Int(span.end_unix_nano)},
                   {"attributes", Attrs(span.attributes)},
                   {"status", std::move(status)}});
  }
  json body = {{"resourceSpans",
                json::array({{{"resource", Resource(resource)},
                              {"scopeSpans",
                               json::array({{{"scope", Scope()}, {"spans", std::move(out)}}})}}})}};
  // Span messages may carry arbitrary bytes from errors; replace invalid UTF-8 instead of throwing.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace arrow_zerobus::telemetry_internal
