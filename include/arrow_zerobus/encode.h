// RecordBatch -> protobuf rows. Planned once per schema (per-column writers), then a size pass
// and a write pass over the Arrow buffers into one contiguous buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {

// The server refuses gRPC messages over 10 MiB; keep every request 64 KiB below that.
inline constexpr int64_t kDefaultMaxRequestBytes = 10 * 1024 * 1024 - 64 * 1024;

struct EncodeOptions {
  // Upper bound for one whole ingest_record_batch request (EphemeralStreamRequest with its
  // framing and offset). A single row that cannot fit fails alone.
  int64_t max_request_bytes = kDefaultMaxRequestBytes;
  static EncodeOptions Defaults() { return EncodeOptions(); }
};

struct RowError {
  int64_t row;          // index in the source RecordBatch
  std::string message;  // names the column and the value
};

// A run of consecutive encoded records that travels as one batch request.
struct RecordRange {
  int64_t begin = 0;  // first record (index into EncodedBatch records)
  int64_t end = 0;    // one past the last
};

// The rows of one RecordBatch, encoded. Records are stored *framed* as entries of
// ProtoEncodedRecordBatch.records (tag 0x0A, varint length, row bytes), back to back, so the
// bytes of a RecordRange are exactly the body of a ProtoEncodedRecordBatch message and go on the
// wire without another copy.
struct EncodedBatch {
  std::shared_ptr<arrow::Buffer> buffer;
  // framed record i spans [record_offsets[i], record_offsets[i + 1]); size = records + 1.
  std::vector<int64_t> record_offsets;
  // source row of record i (rows that failed are skipped, so this is not always the identity).
  std::vector<int64_t> source_rows;
  // rows that could not be encoded, sorted by row.
  std::vector<RowError> failed_rows;
  // each chunk's request stays within EncodeOptions::max_request_bytes.
  std::vector<RecordRange> chunks;

  int64_t num_records() const { return static_cast<int64_t>(source_rows.size()); }
  // The bytes of one row (without the framing): a serialized message of the descriptor.
  std::string_view record(int64_t i) const;
  // The framed bytes of records [range.begin, range.end): a ProtoEncodedRecordBatch body.
  std::string_view framed(RecordRange range) const;
};

class RecordBatchEncoder {
 public:
  // Plans an encoder for `schema` bound to `descriptor` (see BindArrowSchema).
  static arrow::Result<std::unique_ptr<RecordBatchEncoder>> Make(
      std::shared_ptr<arrow::Schema> schema, const DescriptorProto& descriptor,
      const EncodeOptions& options = EncodeOptions::Defaults());
  // Plans an encoder with the descriptor generated from `schema` (DescriptorFromArrowSchema).
  static arrow::Result<std::unique_ptr<RecordBatchEncoder>> Make(
      std::shared_ptr<arrow::Schema> schema,
      const EncodeOptions& options = EncodeOptions::Defaults());

  ~RecordBatchEncoder();

  const std::shared_ptr<arrow::Schema>& schema() const;
  const DescriptorProto& descriptor() const;

  // Encodes every row; rows that cannot be encoded land in failed_rows and the rest go on.
  // Fails as a whole only when the batch's schema does not match the planned one.
  // Thread-safe: an encoder can be shared by concurrent callers.
  arrow::Result<EncodedBatch> Encode(const arrow::RecordBatch& batch) const;

 private:
  struct Impl;
  explicit RecordBatchEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace arrow_zerobus
