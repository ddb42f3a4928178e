// The Arrow Flight side of a table: which Arrow schema a DoPut must declare for a table, and
// how its record batches become rows in the table's storage types.
//
// The Arrow type expected for each table type is the one the vendor SDKs derive from Unity
// Catalog (Flight fact sheet, "Schema requirements"), checked strictly where the real server's
// tolerance is unknown:
//
//   table type              Arrow type on the wire
//   string                  large_utf8            (utf8 refused)
//   binary                  large_binary          (binary refused)
//   decimal(p,s)            large_utf8 (decimal text, parsed per value)
//   bigint/int/smallint/    int64 / int32 / int16 / int8
//   tinyint
//   double / float          float64 / float32
//   boolean                 bool
//   date                    date32
//   timestamp               timestamp[us, tz=UTC]  (other units or zones refused)
//   timestamp_ntz           timestamp[us]
//   array<T>                list<T> (the element's name and nullability are free)
//   map<K,V>                map<K,V> (entry names free: entries/keys/values or key/value)
//   struct<...>             struct with the same fields, in order, same nullability
//
// Top-level fields: in table column order, each field's nullability equal to its column's
// (a nullable field for a NOT NULL column is refused, and the reverse); nullable columns may be
// left out (they store NULL). Dictionary-encoded and view types are refused.
//
// Pure functions, thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace arrow_zerobus::emulator {

// Cause tokens of a schema rejection (the vendor's ErrorInfo `causes` metadata).
inline constexpr const char* kFieldNotInTable = "FIELD_NOT_IN_TABLE";
inline constexpr const char* kMissingRequiredColumn = "MISSING_REQUIRED_COLUMN";
inline constexpr const char* kFieldOutOfOrder = "FIELD_OUT_OF_ORDER";
inline constexpr const char* kTypeIncompatible = "TYPE_INCOMPATIBLE";
inline constexpr const char* kFieldCountMismatch = "FIELD_COUNT_MISMATCH";

// The result of checking a DoPut's schema against a table.
struct FlightSchemaCheck {
  std::vector<std::string> causes;    // cause tokens, each once, in the order first found
  std::vector<std::string> problems;  // one sentence per problem, naming field and column
  // Table column index -> Flight field index (-1: left out, stored as NULL). Valid if ok().
  std::vector<int> source_of_column;

  bool ok() const { return problems.empty(); }
  // "Arrow Flight schema validation failed for table 't': <problems joined by '; '>"
  std::string Message(const std::string& table) const;
};

FlightSchemaCheck CheckFlightSchema(const arrow::Schema& flight, const arrow::Schema& table);

// The Arrow type a DoPut must use for a table column of `table_type` (the table above; list
// elements named "item" and nullable, map entries "entries" {"keys", "values"}).
std::shared_ptr<arrow::DataType> FlightTypeFor(const std::shared_ptr<arrow::DataType>& table_type);

// Converts a batch whose schema passed CheckFlightSchema into the table's schema: strings and
// binaries to 32-bit offsets, decimal text parsed, nested types renamed (buffers shared where
// the layout is the same), left-out columns NULL. A NULL in a NOT NULL column/element or bad
// decimal text is INVALID_ARGUMENT naming the column and the row.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> FlightBatchToTable(
    const arrow::RecordBatch& batch, const std::shared_ptr<arrow::Schema>& table,
    const std::vector<int>& source_of_column);

}  // namespace arrow_zerobus::emulator
