// Wire framing of EphemeralStream messages. Ingest requests are framed by hand: a few header
// bytes (outer oneof field, offset_id, batch/record field) followed by the caller's record bytes
// as a gRPC slice that references the caller's arrow::Buffer, so row bytes are never copied into
// protobuf objects. The generated-message path is kept for comparison (StreamOptions::zero_copy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/buffer.h>
#include <arrow/result.h>
#include <grpcpp/support/byte_buffer.h>

#include "arrow_zerobus/schema.h"
#include "arrow_zerobus/stream.h"
#include "encode/wire.h"
#include "zerobus.pb.h"

namespace arrow_zerobus::internal {

inline constexpr const char* kEphemeralStreamMethod = "/databricks.zerobus.Zerobus/EphemeralStream";

// The largest header MakeIngestHeader writes (three tags + three 10-byte varints).
inline constexpr size_t kMaxIngestHeader = 33;

// The encoder's varint primitives, in the byte-count form the header code uses.
inline int VarintSize(uint64_t v) { return static_cast<int>(encode_internal::VarintSize(v)); }
// Writes `v` as a base-128 varint; returns the bytes written.
inline int WriteVarint(uint64_t v, uint8_t* out) {
  return static_cast<int>(encode_internal::WriteVarint(out, v) - out);
}

// The bytes in front of `payload_size` payload bytes that make an EphemeralStreamRequest:
//   batch:  ingest_record_batch{offset_id, proto_encoded_batch|json_batch{<payload>}}
//   record: ingest_record{offset_id, proto_encoded_record|json_record: <payload>}
// `payload` of a batch is the framed records (a ProtoEncodedRecordBatch/JsonRecordBatch body).
size_t MakeIngestHeader(bool batch, RecordType type, int64_t offset, size_t payload_size,
                        uint8_t* out);

// The whole request as a ByteBuffer: header slice + a slice over `bytes` that keeps `owner`
// alive (zero_copy), or a generated EphemeralStreamRequest serialized (one copy per row).
grpc::ByteBuffer MakeIngestRequest(bool batch, RecordType type, int64_t offset,
                                   const std::shared_ptr<arrow::Buffer>& owner,
                                   std::string_view bytes, bool zero_copy);

grpc::ByteBuffer MakeCreateStreamRequest(const std::string& table_name, RecordType type,
                                         const DescriptorProto* descriptor);

// Number of records in a framed batch body; Invalid naming the byte offset when the bytes are
// not a sequence of `0x0A <varint length> <bytes>` entries.
arrow::Result<int64_t> CountFramedRecords(std::string_view framed);

// Parses a server message; false when the bytes are not an EphemeralStreamResponse.
bool ParseResponse(grpc::ByteBuffer* buffer, databricks::zerobus::EphemeralStreamResponse* out);

}  // namespace arrow_zerobus::internal
