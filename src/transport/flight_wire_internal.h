// Arrow Flight DoPut framing (fact sheet zerobus-arrow-flight.md sections 2-3): the schema
// FlightData sent when a DoPut opens, one FlightData per record batch piece with its
// {"offset_id":N} app_metadata, the PutResult acks, the arrow-rs splitting rule, and the schema
// rejection details. FlightData is framed by hand: the IPC header and app_metadata are copied
// (small), the body buffers go on the wire as gRPC slices over the Arrow buffers (no copy).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/type.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/encode.h"

namespace arrow_zerobus::internal {

inline constexpr const char* kFlightDoPutMethod = "/arrow.flight.protocol.FlightService/DoPut";

// One piece of an ingested batch, encoded once when it is admitted.
struct FlightPiece {
  std::shared_ptr<arrow::RecordBatch> rows;  // the piece's rows, dictionaries hydrated
  arrow::ipc::IpcPayload payload;            // IPC RecordBatch header + body buffers
  int64_t wire_bytes = 0;                    // header + body: what flow control counts
};

// IPC options of every message: metadata V5, 64-byte alignment, the codec (Invalid when this
// Arrow build lacks it).
arrow::Result<arrow::ipc::IpcWriteOptions> FlightIpcOptions(IpcCompression compression);

// The schema on the wire: dictionary fields as their value type (the server expects plain
// columns). Nested dictionaries are not supported (Validate rejects them).
std::shared_ptr<arrow::Schema> FlightWireSchema(const arrow::Schema& schema);
// Invalid naming the first field with a dictionary inside a nested type.
arrow::Status CheckFlightSchema(const arrow::Schema& schema);

// `batch` with its dictionary columns replaced by their values (as `wire_schema` says).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> HydrateDictionaries(
    const std::shared_ptr<arrow::RecordBatch>& batch,
    const std::shared_ptr<arrow::Schema>& wire_schema);

// "field 2 'name' is utf8 in the batch but large_utf8 in the stream's schema", or the first
// other difference; empty when the schemas are equal (metadata included).
std::string DescribeSchemaMismatch(const arrow::Schema& batch, const arrow::Schema& stream);

// The vendor clients' rule (arrow-rs FlightDataEncoder): n = ceil(buffer bytes / piece_bytes),
// rows per piece = floor(rows / n) (at least 1), so a remainder piece can follow.
std::vector<RecordRange> SplitForFlight(const arrow::RecordBatch& batch, int64_t piece_bytes);

// Encodes `rows` as one IPC RecordBatch message.
arrow::Result<std::shared_ptr<FlightPiece>> EncodeFlightPiece(
    std::shared_ptr<arrow::RecordBatch> rows, const arrow::ipc::IpcWriteOptions& options);

// FlightData{data_header: IPC Schema message} with no descriptor and no app_metadata.
arrow::Result<grpc::ByteBuffer> MakeSchemaFlightData(const arrow::Schema& schema,
                                                     const arrow::ipc::IpcWriteOptions& options);
// FlightData{data_header, app_metadata {"offset_id":N}, data_body} for `piece`; the body slices
// keep the piece's buffers alive.
grpc::ByteBuffer MakePieceFlightData(const std::shared_ptr<const FlightPiece>& piece,
                                     int64_t offset_id);

// A PutResult's app_metadata JSON.
struct FlightAck {
  int64_t ack_up_to_offset = 0;
  int64_t ack_up_to_records = 0;
  std::optional<int64_t> close_stream_duration_ms;
};
// Invalid saying what is wrong when the message is not a PutResult with that JSON.
arrow::Result<FlightAck> ParsePutResult(grpc::ByteBuffer* message);

// The server's schema rejection (INVALID_ARGUMENT with a google.rpc.ErrorInfo of reason
// SCHEMA_VALIDATION_FAILED in the status details): "schema rejected by the server (causes: ...;
// error code N): <message>"; nullopt for any other status.
struct SchemaRejection {
  std::string causes;  // comma-separated, as sent
  std::optional<int> error_code;
  std::string message;
};
std::optional<SchemaRejection> ParseSchemaRejection(const grpc::Status& status);

}  // namespace arrow_zerobus::internal
