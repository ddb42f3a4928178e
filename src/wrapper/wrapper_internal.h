// Small policies of the wrapper, kept apart so tests can check them directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

#include <arrow/status.h>

namespace arrow_zerobus::internal {

// Exponential backoff with full jitter: a delay drawn uniformly from [0, cap) where
// cap = min(max_ms, base_ms * 2^(retry - 1)); `retry` counts from 1, `unit` is in [0, 1).
inline int64_t FullJitterBackoffMs(int retry, int64_t base_ms, int64_t max_ms, double unit) {
  const int shift = std::clamp(retry - 1, 0, 40);
  const double cap = std::min(static_cast<double>(max_ms),
                              static_cast<double>(base_ms) * static_cast<double>(1LL << shift));
  return static_cast<int64_t>(cap * std::clamp(unit, 0.0, 1.0));
}

// A "6006 Pipeline creation is temporarily blocked" refusal: the number as a whole token, or the
// service's words.
inline bool IsPipelineBlocked(const arrow::Status& status) {
  if (status.ok()) return false;
  const std::string& m = status.message();
  for (size_t pos = m.find("6006"); pos != std::string::npos; pos = m.find("6006", pos + 1)) {
    const bool digit_before = pos > 0 && m[pos - 1] >= '0' && m[pos - 1] <= '9';
    const bool digit_after = pos + 4 < m.size() && m[pos + 4] >= '0' && m[pos + 4] <= '9';
    if (!digit_before && !digit_after) return true;
  }
  std::string lower(m);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return lower.find("pipeline creation is temporarily blocked") != std::string::npos;
}

}  // namespace arrow_zerobus::internal
