// Records -> Arrow. The inverse of the project's encoder (include/arrow_zerobus/encode.h): a
// hand-rolled proto2 wire parser, planned once per stream from (descriptor, table schema), that
// appends straight into Arrow builders of the table's schema. Also a JSON decoder for
// RecordType JSON streams (each record one JSON object, parsed against the table schema).
//
// Decoding rules (proto):
// - Unknown field numbers are rejected (the descriptor was checked against the table, so an
//   unknown field is a malformed record). Wrong wire types are rejected; packed and unpacked
//   repeated scalars are both accepted. A repeated-in-proto2 non-repeated field: last one wins.
// - A required field missing from a record is an error; an optional field missing is NULL; a
//   repeated field missing is an empty list; extra nullable table columns are NULL.
// - Conversions: int64 micros -> timestamp[us]; int32 days -> date32; decimal text ->
//   decimal128 (at most s fractional digits, at most p digits in all); enum number -> its name
//   for string columns (unknown number = error); integers range-checked into narrower columns.
// - Map entries: a missing key or (non-nullable) value takes the type's default, as protobuf
//   does; a missing nullable value is NULL.
//
// Errors are INVALID_ARGUMENT (arrow Invalid) and read like
//   "record 3: field 'readings.value' (#2): wrong wire type 2 (length-delimited), expected 1
//    (64-bit) for double"
// where the record index counts from 0 within the span passed to Decode.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include <arrow/memory_pool.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "decode/emulator_status.h"
#include "decode/table_schema.h"

namespace arrow_zerobus::emulator {

struct DecoderOptions {
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  // Nesting depth beyond which a record is refused (guards the recursive parser).
  int max_depth = 100;
  static DecoderOptions Defaults() { return DecoderOptions(); }
};

// Not thread-safe: a decoder reuses its builders between calls; use one per stream (or guard).
// Decode results never alias the input bytes.
class RecordDecoder {
 public:
  virtual ~RecordDecoder() = default;

  // A protobuf decoder for records of `descriptor` into `table_schema`. Runs
  // CheckDescriptorAgainstSchema first and returns its INVALID_ARGUMENT on mismatch.
  static arrow::Result<std::unique_ptr<RecordDecoder>> MakeProto(
      const DescriptorProto& descriptor, std::shared_ptr<arrow::Schema> table_schema,
      const DecoderOptions& options = DecoderOptions::Defaults());

  // A JSON decoder: each record is a JSON object whose keys are column names (unknown keys are
  // an error; missing or null keys are NULL, an error for NOT NULL columns). Timestamps as
  // integer microseconds or ISO-8601 text, dates as integer days or "YYYY-MM-DD", decimals as
  // text or numbers, binary as base64 text, arrays as JSON arrays, maps as JSON objects (string
  // keys) or arrays of {"key","value"}.
  static arrow::Result<std::unique_ptr<RecordDecoder>> MakeJson(
      std::shared_ptr<arrow::Schema> table_schema,
      const DecoderOptions& options = DecoderOptions::Defaults());

  // Decodes all records into one batch in the table's schema, or fails as a whole with an error
  // naming the first bad record's index. An empty span gives a 0-row batch.
  virtual arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(
      std::span<const std::string_view> records) = 0;

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }

 protected:
  explicit RecordDecoder(std::shared_ptr<arrow::Schema> schema) : schema_(std::move(schema)) {}
  std::shared_ptr<arrow::Schema> schema_;
};

}  // namespace arrow_zerobus::emulator
