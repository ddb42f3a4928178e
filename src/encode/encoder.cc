// RecordBatchEncoder: plans once per schema, then per batch a size pass (sizes per row, row
// failures, request chunks), one allocation, and a write pass. Both passes run over blocks of
// rows, one column at a time inside a block, so every inner loop stays on one Arrow buffer and
// the block's slice of the output stays in cache.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "encode/writers_internal.h"

namespace arrow_zerobus {

namespace ei = encode_internal;

namespace {

// Rows per block: big enough to amortise the per-column dispatch, small enough that the
// block's slots, cursors and output stay in L1. Lists multiply the slots per row, so schemas
// with repeated fields take smaller blocks (measured on bench_encode: 512 best for `iot`, 64 for
// `nested`).
constexpr int64_t kFlatBlockRows = 512;
constexpr int64_t kNestedBlockRows = 64;

bool HasRepeated(const MessageBinding& message) {
  for (const auto& f : message.fields) {
    if (f.repeated || f.is_map) return true;
    if (f.message != nullptr && HasRepeated(*f.message)) return true;
  }
  return false;
}

// Bytes of the whole request whose records take `body` bytes (framing included).
int64_t RequestSize(int64_t body) { return ei::IngestRequestSize(body); }

// The most record bytes one request can carry: RequestSize grows with the body, so walk down
// from the limit (the framing is at most a few dozen bytes).
int64_t MaxBody(int64_t max_request) {
  int64_t body = max_request;
  while (body > 0 && RequestSize(body) > max_request) --body;
  return body;
}

int64_t FramedSize(int64_t row_bytes) {
  return 1 + ei::VarintSize(static_cast<uint64_t>(row_bytes)) + row_bytes;
}

}  // namespace

std::string_view EncodedBatch::record(int64_t i) const {
  const auto* base = reinterpret_cast<const char*>(buffer->data());
  int64_t begin = record_offsets[i] + 1;  // skip the 0x0A key
  while (static_cast<uint8_t>(base[begin]) & 0x80) ++begin;
  ++begin;  // last byte of the length varint
  return {base + begin, static_cast<size_t>(record_offsets[i + 1] - begin)};
}

std::string_view EncodedBatch::framed(RecordRange range) const {
  const auto* base = reinterpret_cast<const char*>(buffer->data());
  return {base + record_offsets[range.begin],
          static_cast<size_t>(record_offsets[range.end] - record_offsets[range.begin])};
}

struct RecordBatchEncoder::Impl {
  std::shared_ptr<arrow::Schema> schema;
  DescriptorProto descriptor;
  std::shared_ptr<const MessageBinding> binding;
  EncodeOptions options;
  ei::MessagePlan plan;
  int64_t block_rows = kFlatBlockRows;
};

RecordBatchEncoder::RecordBatchEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecordBatchEncoder::~RecordBatchEncoder() = default;

const std::shared_ptr<arrow::Schema>& RecordBatchEncoder::schema() const { return impl_->schema; }
const DescriptorProto& RecordBatchEncoder::descriptor() const { return impl_->descriptor; }

arrow::Result<std::unique_ptr<RecordBatchEncoder>> RecordBatchEncoder::Make(
    std::shared_ptr<arrow::Schema> schema, const DescriptorProto& descriptor,
    const EncodeOptions& options) {
  if (schema == nullptr) return ConversionError("encoder needs a schema, got null");
  if (schema->num_fields() == 0) {
    return ConversionError("the schema has no columns: Zerobus needs at least one");
  }
  // The smallest request: one empty record (2 bytes of framing).
  const int64_t min_request = RequestSize(FramedSize(0));
  // gRPC messages cannot exceed 2 GiB; the limit also keeps the size arithmetic far from
  // overflow.
  constexpr int64_t kMaxRequest = int64_t{1} << 31;
  if (options.max_request_bytes > kMaxRequest) {
    return ConfigurationError("EncodeOptions.max_request_bytes is " +
                              std::to_string(options.max_request_bytes) + ", above the 2 GiB " +
                              "a gRPC message can hold");
  }
  if (options.max_request_bytes < min_request) {
    return ConfigurationError("EncodeOptions.max_request_bytes is " +
                              std::to_string(options.max_request_bytes) +
                              ", below the smallest possible request (" +
                              std::to_string(min_request) + " bytes)");
  }
  auto impl = std::make_unique<Impl>();
  ARROW_ASSIGN_OR_RAISE(impl->binding, BindArrowSchema(*schema, descriptor));
  ARROW_ASSIGN_OR_RAISE(impl->plan, ei::PlanMessage(*impl->binding));
  for (int index : impl->plan.arrow_index) {
    if (index < 0 || index >= schema->num_fields()) {
      return ConversionError("binding refers to column " + std::to_string(index) +
                             " of a schema with " + std::to_string(schema->num_fields()));
    }
  }
  impl->block_rows = HasRepeated(*impl->binding) ? kNestedBlockRows : kFlatBlockRows;
  impl->schema = std::move(schema);
  impl->descriptor = descriptor;
  impl->options = options;
  return std::unique_ptr<RecordBatchEncoder>(new RecordBatchEncoder(std::move(impl)));
}

arrow::Result<std::unique_ptr<RecordBatchEncoder>> RecordBatchEncoder::Make(
    std::shared_ptr<arrow::Schema> schema, const EncodeOptions& options) {
  if (schema == nullptr) return ConversionError("encoder needs a schema, got null");
  ARROW_ASSIGN_OR_RAISE(DescriptorProto descriptor, DescriptorFromArrowSchema(*schema));
  return Make(std::move(schema), descriptor, options);
}

arrow::Result<EncodedBatch> RecordBatchEncoder::Encode(const arrow::RecordBatch& batch) const {
  const Impl& impl = *impl_;
  if (!batch.schema()->Equals(*impl.schema, /*check_metadata=*/false)) {
    return ConversionError("batch schema does not match the encoder's schema: expected {" +
                           impl.schema->ToString() + "}, got {" + batch.schema()->ToString() +
                           "}");
  }
  const int64_t n = batch.num_rows();
  const int64_t max_request = impl.options.max_request_bytes;
  const int64_t block_rows = impl.block_rows;

  std::vector<std::unique_ptr<ei::ColumnWriter>> writers;
  writers.reserve(impl.plan.fields.size());
  for (size_t c = 0; c < impl.plan.fields.size(); ++c) {
    writers.push_back(impl.plan.fields[c]->Bind(*batch.column_data(impl.plan.arrow_index[c])));
  }

  // Size pass.
  ei::EncodeContext ctx;
  std::vector<int64_t> sizes(static_cast<size_t>(n), 0);
  for (int64_t b = 0; b < n; b += block_rows) {
    ei::Level top;
    top.n = std::min(block_rows, n - b);
    top.pos_add = b;
    top.row_base = b;
    top.size = sizes.data() + b;
    for (auto& w : writers) w->Size(top, &ctx);
  }

  // Row failures (first reason per row, in field order), oversize rows, offsets and chunks.
  std::vector<RowError>& errors = ctx.errors();
  std::stable_sort(errors.begin(), errors.end(),
                   [](const RowError& a, const RowError& b) { return a.row < b.row; });
  EncodedBatch out;
  std::vector<uint8_t> failed(static_cast<size_t>(n), 0);
  out.record_offsets.resize(static_cast<size_t>(n) + 1);
  out.source_rows.resize(static_cast<size_t>(n));
  int64_t* offsets = out.record_offsets.data();
  int64_t* source_rows = out.source_rows.data();
  offsets[0] = 0;
  const int64_t max_body = MaxBody(max_request);
  int64_t records = 0;
  int64_t total = 0;
  int64_t trash_size = 0;
  int64_t chunk_begin = 0;
  int64_t chunk_body = 0;
  size_t e = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (e < errors.size() && errors[e].row == r) [[unlikely]] {
      out.failed_rows.push_back(std::move(errors[e]));
      while (e < errors.size() && errors[e].row == r) ++e;
      failed[r] = 1;
      trash_size = std::max(trash_size, sizes[r]);
      continue;
    }
    const int64_t framed = FramedSize(sizes[r]);
    if (framed > max_body) [[unlikely]] {
      out.failed_rows.push_back(RowError{
          r, "row " + std::to_string(r) + ": row is " + std::to_string(sizes[r]) +
                 " bytes, over the request limit " + std::to_string(max_request)});
      failed[r] = 1;
      trash_size = std::max(trash_size, sizes[r]);
      continue;
    }
    if (chunk_body + framed > max_body) {
      out.chunks.push_back(RecordRange{chunk_begin, records});
      chunk_begin = records;
      chunk_body = 0;
    }
    chunk_body += framed;
    total += framed;
    source_rows[records] = r;
    offsets[++records] = total;
  }
  out.record_offsets.resize(static_cast<size_t>(records) + 1);
  out.source_rows.resize(static_cast<size_t>(records));
  if (records > chunk_begin) out.chunks.push_back(RecordRange{chunk_begin, records});

  ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::Buffer> buffer, arrow::AllocateBuffer(total));
  uint8_t* const base = buffer->mutable_data();
  // Rows that failed are still written, into scratch space, so no loop has to skip them.
  std::vector<uint8_t> trash(static_cast<size_t>(trash_size));

  // Write pass.
  for (auto& w : writers) w->Rewind();
  std::vector<uint8_t*> cursors(static_cast<size_t>(std::min(block_rows, n)));
  int64_t record = 0;
  const int64_t* record_offsets = out.record_offsets.data();
  for (int64_t b = 0; b < n; b += block_rows) {
    ei::Level top;
    top.n = std::min(block_rows, n - b);
    top.pos_add = b;
    top.row_base = b;
    top.cur = cursors.data();
    int64_t first_record = record;
    for (int64_t k = 0; k < top.n; ++k) {
      const int64_t r = b + k;
      if (failed[r]) {
        cursors[k] = trash.data();
        continue;
      }
      uint8_t* p = base + record_offsets[record++];
      *p++ = 0x0A;  // ProtoEncodedRecordBatch.records, length-delimited
      cursors[k] = ei::WriteVarint(p, static_cast<uint64_t>(sizes[r]));
    }
    for (auto& w : writers) w->Write(top);
    // Every row must have filled exactly the bytes the size pass promised.
    for (int64_t k = 0; k < top.n; ++k) {
      const int64_t r = b + k;
      const uint8_t* expected =
          failed[r] ? trash.data() + sizes[r] : base + record_offsets[++first_record];
      if (cursors[k] != expected) {
        return arrow::Status::UnknownError("internal encoder error: row ", r, " wrote ",
                                           cursors[k] - (expected - sizes[r]),
                                           " bytes, expected ", sizes[r]);
      }
    }
  }
  out.buffer = std::move(buffer);
  return out;
}

}  // namespace arrow_zerobus
