// Test helpers for the Arrow Flight stream: a loopback DoPut server that follows a script (to
// test how the client copes with partial acks, over-claims, bad ready signals, rejections), a
// FlightData decoder built on Arrow's IPC reader, and protobuf bytes for google.rpc.Status.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <grpcpp/support/byte_buffer.h>

namespace arrow_zerobus::testing {

// The Flight tests' rows: `id` int64 (not null) and `name` large_utf8 ("row-<id>", null for
// every id with id % 7 == 3), ids first..first+n-1.
std::shared_ptr<arrow::Schema> FlightTestSchema();
std::shared_ptr<arrow::RecordBatch> FlightTestRows(int64_t first, int64_t n);
// from, from + 1, ..., to - 1.
std::vector<int64_t> Range(int64_t from, int64_t to);

// Protobuf wire bytes, for building test messages by hand.
void PutVarint(uint64_t v, std::string* out);
void PutBytes(uint32_t field, std::string_view bytes, std::string* out);
// google.rpc.Status{code, message, details: [Any(google.rpc.ErrorInfo{reason, domain,
// metadata {causes, error_code}})]} serialized (the grpc-status-details-bin payload).
std::string ErrorInfoStatus(int code, const std::string& message, const std::string& reason,
                            const std::string& causes, const std::string& error_code);

std::string FlattenBuffer(const grpc::ByteBuffer& bb);

// An array from JSON text (the test fails on bad text).
std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                            const std::string& json);

// One FlightData message decoded.
struct DecodedFlightData {
  bool has_descriptor = false;
  std::string app_metadata;
  std::shared_ptr<arrow::Schema> schema;       // a Schema message
  std::shared_ptr<arrow::RecordBatch> batch;   // a RecordBatch message (needs `schema`)
  std::string error;                           // what could not be decoded
};
DecodedFlightData DecodeFlightData(const std::string& bytes,
                                   const std::shared_ptr<arrow::Schema>& schema);

class ScriptedFlightServer {
 public:
  enum class Mode {
    kNormal,           // ready after the schema; every piece acked with cumulative rows
    kPartialThenFail,  // first DoPut: half the first piece's rows acked, then UNAVAILABLE
    kCloseSignal,      // first DoPut: the first piece acked with close_stream_duration_ms 300
    kWithholdAcks,     // first DoPut: pieces never acked
    kBadReady,         // the first PutResult acks offset 3 instead of the ready signal
    kGarbageReady,     // the first PutResult is not JSON
    kOverClaim,        // the first piece acked with 5 rows more than it has
    kSchemaReject,     // headers, then INVALID_ARGUMENT with a SCHEMA_VALIDATION_FAILED ErrorInfo
    kEndDuringSetup,   // the DoPut ends with OK before the ready signal
  };
  explicit ScriptedFlightServer(Mode mode);
  ~ScriptedFlightServer();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  struct Piece {
    std::string app_metadata;
    std::shared_ptr<arrow::RecordBatch> rows;
  };
  struct DoPut {
    std::string method;
    std::map<std::string, std::string> metadata;
    bool schema_has_descriptor = false;
    std::string schema_app_metadata;
    std::shared_ptr<arrow::Schema> schema;
    std::vector<Piece> pieces;
    std::vector<std::string> decode_errors;
    bool half_closed = false;  // the client ended its requests cleanly
  };
  std::vector<DoPut> calls() const;
  // Every `column` value (int64) of every piece, in arrival order across DoPuts.
  std::vector<int64_t> ReceivedIds() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  int port_ = 0;
};

}  // namespace arrow_zerobus::testing
