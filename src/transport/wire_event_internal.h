// What crosses the wire-protocol seam without gRPC types: one request as it goes on the wire and
// what one server message means. The stream's state machine (transport/stream_machine_internal.h)
// consumes and produces these; the protocols (transport/protocol_internal.h) frame and parse them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <arrow/buffer.h>
#include <arrow/status.h>

namespace arrow_zerobus::internal {

struct FlightPiece;  // transport/flight_wire_internal.h

// One request as it goes on the wire: framed row bytes (EphemeralStream) or an Arrow piece.
struct OutgoingRequest {
  bool batch = true;
  std::shared_ptr<arrow::Buffer> owner;
  std::string_view bytes;
  std::shared_ptr<const FlightPiece> piece;
  // Rows at the front of `piece` that are already durable (acked on an earlier RPC): they are
  // left out of this send.
  int64_t skip_rows = 0;
};

// What one server message means to the stream.
struct WireEvent {
  enum class Kind : int8_t {
    kOpened,       // create_stream_response / the ready signal
    kAckOffset,    // durable up to wire offset `value` (inclusive) on this RPC
    kAckRecords,   // durable: the first `value` rows sent on this RPC (cumulative)
    kCloseSignal,  // the server will end this RPC in `close_after`
    kError,        // the RPC must end with `error`
  };
  Kind kind = Kind::kError;
  int64_t value = 0;
  std::chrono::milliseconds close_after{0};
  std::string stream_id;
  arrow::Status error;
};

// "protocol error from the server: <what>".
arrow::Status ProtocolError(std::string what, bool retryable = false);

}  // namespace arrow_zerobus::internal
