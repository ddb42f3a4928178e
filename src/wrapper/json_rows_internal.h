// Rows for record_type json: the encoder's protobuf records transcoded to JSON objects, one per
// row, framed like the protobuf ones so the stream sends them as a JsonRecordBatch.
//
// Working from the encoded records keeps one set of value rules (timestamps in microseconds,
// dates in days, decimals as exact text, dictionaries decoded, per-row overflow checks): the
// JSON says exactly what the protobuf row says, in the forms Zerobus' JSON ingestion reads:
// integers and floats as numbers (NaN and infinities as "NaN" / "Infinity" / "-Infinity"),
// bytes as base64, enums by name, nested messages as objects, repeated fields as arrays and maps
// as objects keyed by the key's text. Absent (null) fields are left out, except repeated ones:
// protobuf cannot tell an empty list from an absent one, and a protobuf row's absent repeated
// field lands as an empty list, so JSON rows write [] (or {} for maps) to land the same.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/result.h>
#include <google/protobuf/descriptor.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus::internal {

// Thread-safe after Make: Convert may be called concurrently.
class JsonRowsConverter {
 public:
  static arrow::Result<std::unique_ptr<JsonRowsConverter>> Make(const DescriptorProto& descriptor);

  // The rows of `encoded` as framed JSON records, chunked so that each request stays within
  // `max_request_bytes`. failed_rows holds the encoder's failures and rows whose JSON alone is
  // over the limit (or, never expected, cannot be transcoded), sorted by row.
  arrow::Result<EncodedBatch> Convert(const EncodedBatch& encoded,
                                      int64_t max_request_bytes = kDefaultMaxRequestBytes) const;

  // One serialized message of the descriptor as JSON (tests, tools). Invalid for malformed
  // input.
  arrow::Result<std::string> ToJson(std::string_view record) const;

 private:
  JsonRowsConverter() = default;
  google::protobuf::DescriptorPool pool_;
  const google::protobuf::Descriptor* root_ = nullptr;
  // Per message type: its repeated fields by number (to write the absent ones as empty).
  std::unordered_map<const google::protobuf::Descriptor*,
                     std::vector<const google::protobuf::FieldDescriptor*>>
      repeated_;
};

}  // namespace arrow_zerobus::internal
