// The wire-protocol seam of ZerobusStream: what differs between the EphemeralStream RPC
// (protobuf/JSON rows) and Arrow Flight DoPut. The stream's state machine (phases, in-flight
// limits, acks, recovery, replay, close signals) is shared; a protocol only says how an RPC opens,
// how one request is framed for the wire, and what a server message means.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "arrow_zerobus/stream.h"
#include "transport/wire_event_internal.h"

namespace arrow_zerobus::internal {

class WireProtocol {
 public:
  virtual ~WireProtocol() = default;
  // The gRPC method of the bidirectional stream.
  virtual const char* method() const = 0;
  // The first message of every RPC.
  virtual grpc::ByteBuffer OpenRequest() const = 0;
  // `request` framed as the message at wire offset `offset` of its RPC.
  virtual arrow::Result<grpc::ByteBuffer> Frame(const OutgoingRequest& request,
                                                int64_t offset) const = 0;
  // The events one server message carries (none for a message to ignore). `opened`: the RPC
  // already signalled kOpened.
  virtual void Parse(grpc::ByteBuffer* message, bool opened,
                     std::vector<WireEvent>* events) const = 0;
  // The error of an RPC the server ended with a non-OK status, when the protocol knows more
  // than the code and message (e.g. a schema rejection's details); nullopt otherwise.
  virtual std::optional<arrow::Status> EndStatus(const grpc::Status&) const {
    return std::nullopt;
  }
};

// EphemeralStream with options.record_type kProto or kJson.
std::unique_ptr<WireProtocol> MakeEphemeralProtocol(const StreamOptions& options);
// Arrow Flight DoPut (record_type kArrow); the schema is checked by Validate().
arrow::Result<std::unique_ptr<WireProtocol>> MakeFlightProtocol(const StreamOptions& options);

}  // namespace arrow_zerobus::internal
