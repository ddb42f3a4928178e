// The Arrow schema the Zerobus Arrow Flight service expects for a Delta table, and the cast of
// caller batches to it (zerobus-arrow-flight.md section 4 "Schema requirements"). Pure Arrow
// work: no network, thread-safe, nothing shared between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {

// The Flight type of a Delta column whose rows have `table_type`, in the convention of
// ParseDeltaTypeText (delta_types.h): STRING/VARIANT (utf8) and DECIMAL(p,s) (decimal128)
// large_utf8, BINARY large_binary, TINYINT..BIGINT int8..int64, FLOAT/DOUBLE, BOOLEAN, DATE
// date32, TIMESTAMP timestamp[us, "UTC"], TIMESTAMP_NTZ timestamp[us], ARRAY<T> list<item: T>,
// MAP<K,V> map<entries{keys: K not null, values: V}>, STRUCT struct (same child names and
// nullability). Conversion error naming `path` for any other type.
arrow::Result<std::shared_ptr<arrow::DataType>> FlightTypeForTableType(
    const std::shared_ptr<arrow::DataType>& table_type, const std::string& path);

// A Delta table as the Flight transport sees it.
struct FlightTarget {
  // The table's columns in position order with the types of their rows (ParseDeltaTypeText:
  // decimal128(5,2) for DECIMAL(5,2), int8 for TINYINT, ...): what each value must fit.
  std::shared_ptr<arrow::Schema> table_schema;
  // What the stream declares and sends: the same names, order and nullability (NOT NULL ->
  // non-nullable), Flight types (FlightTypeForTableType).
  std::shared_ptr<arrow::Schema> flight_schema;
};

// From a table's schema in the ParseDeltaTypeText convention, fields in position order: e.g.
// ArrowSchemaFromUnityCatalogTable(table_json) (wrapper.h) or a declared table.
arrow::Result<FlightTarget> FlightTargetForTableSchema(
    std::shared_ptr<arrow::Schema> table_schema);
// From Delta columns (name, type text, nullable) in position order.
arrow::Result<FlightTarget> FlightTargetForDeltaColumns(const std::vector<DeltaColumn>& columns);
// The table a batch of `input` lands in (DeltaColumnsFromArrowSchema, type-mapping.md): what
// to declare when no table schema is at hand.
arrow::Result<FlightTarget> FlightTargetForArrowSchema(const arrow::Schema& input);

// One input row left out of a cast.
struct FlightRowFailure {
  int64_t row = 0;      // index in the input batch
  std::string column;   // dotted path: "price", "point.x", "tags.item", "attrs.key", "attrs.value"
  std::string reason;   // "value 300 overflows TINYINT", "decimal 123.456 does not fit ..."
};

struct FlightCastResult {
  // target.flight_schema; the rows that cast, in input order. Columns whose type already is the
  // Flight type share the input's buffers (no copy) when no row failed.
  std::shared_ptr<arrow::RecordBatch> batch;
  // One per left-out row (the first problem found in it), sorted by row.
  std::vector<FlightRowFailure> failures;
  // The input index of each row of `batch`; empty when no row failed (row i is input row i).
  std::vector<int64_t> kept_rows;
};

// Casts `batch` to target.flight_schema. Columns match by name (any order). A missing nullable
// column becomes nulls; a missing NOT NULL column, a column the table does not have, or an
// Arrow type that cannot hold the column's values is a Conversion error naming the column path
// (nothing is sent). Value problems fail only their row: an integer out of range, a decimal
// that does not fit DECIMAL(p,s) exactly, a string that is not a valid decimal, a timestamp or
// date out of range, a null in a NOT NULL column or field. Dictionary and run-end encoded
// arrays are hydrated, extension arrays read as their storage, string/binary/list variants
// converted; decimals become their canonical text with exactly s digits after the point;
// timestamps become microseconds (nanoseconds floor-divided, as on the protobuf path).
arrow::Result<FlightCastResult> CastForFlight(
    const arrow::RecordBatch& batch, const FlightTarget& target,
    arrow::MemoryPool* pool = arrow::default_memory_pool());

}  // namespace arrow_zerobus
