// Small policies of the wrapper, kept apart so tests can check them directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

#include <arrow/status.h>

#include "arrow_zerobus/wrapper.h"

namespace arrow_zerobus::internal {

// GET the Unity Catalog table and map its columns (ArrowSchemaFromUnityCatalogTable); the errors
// of FetchUnityCatalogDescriptor.
arrow::Result<std::shared_ptr<arrow::Schema>> FetchUnityCatalogTableSchema(
    const UnityCatalogOptions& options);

// Exponential backoff with full jitter: a delay drawn uniformly from [0, cap) where
// cap = min(max_ms, base_ms * 2^(retry - 1)); `retry` counts from 1, `unit` is in [0, 1).
inline int64_t FullJitterBackoffMs(int retry, int64_t base_ms, int64_t max_ms, double unit) {
  const int shift = std::clamp(retry - 1, 0, 40);
  const double cap = std::min(static_cast<double>(max_ms),
                              static_cast<double>(base_ms) * static_cast<double>(1LL << shift));
  return static_cast<int64_t>(cap * std::clamp(unit, 0.0, 1.0));
}

}  // namespace arrow_zerobus::internal
