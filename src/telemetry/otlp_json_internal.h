// OTLP/HTTP JSON bodies (opentelemetry-proto's ExportMetricsServiceRequest and
// ExportTraceServiceRequest in the protobuf JSON mapping, with OTLP's rules: camelCase keys,
// 64-bit integers as decimal strings, enums as integers, trace and span ids as lowercase hex).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "arrow_zerobus/telemetry.h"

namespace arrow_zerobus::telemetry_internal {

using AttributeValue = std::variant<std::string, int64_t, double, bool>;
using Attributes = std::vector<std::pair<std::string, AttributeValue>>;

struct ResourceInfo {
  std::string service_name;
  std::string table_name;
};

struct SpanData {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  std::string name;
  int64_t start_unix_nano = 0;
  int64_t end_unix_nano = 0;
  Attributes attributes;
  bool error = false;
  std::string status_message;
};

std::string Hex(const uint8_t* data, size_t size);

// Every metric of `snapshot` as cumulative sums, gauges and one histogram; start_unix_nano is
// when counting began.
std::string MetricsJson(const ResourceInfo& resource, const TelemetrySnapshot& snapshot,
                        int64_t start_unix_nano, int64_t now_unix_nano);
std::string TracesJson(const ResourceInfo& resource, const std::vector<SpanData>& spans);

}  // namespace arrow_zerobus::telemetry_internal
