#include "transport/wire_internal.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/slice.h>

#include "arrow_zerobus/errors.h"
#include "common/proto_wire.h"
#include "transport/protocol_internal.h"

namespace arrow_zerobus::internal {

namespace pb = databricks::zerobus;

namespace {

// Tags: (field number << 3) | wire type; 0 = varint, 2 = length-delimited.
constexpr uint8_t kTagOffsetId = (1 << 3) | 0;
constexpr uint8_t kTagIngestRecord = (2 << 3) | 2;       // EphemeralStreamRequest.ingest_record
constexpr uint8_t kTagIngestBatch = (3 << 3) | 2;        // EphemeralStreamRequest.ingest_record_batch
constexpr uint8_t kTagProtoPayload = (2 << 3) | 2;       // proto_encoded_record / proto_encoded_batch
constexpr uint8_t kTagJsonPayload = (3 << 3) | 2;        // json_record / json_batch
constexpr uint8_t kTagFramedRecord = (1 << 3) | 2;       // ProtoEncodedRecordBatch.records

void ReleaseOwner(void* user_data) { delete static_cast<std::shared_ptr<arrow::Buffer>*>(user_data); }

grpc::ByteBuffer SerializeMessage(const google::protobuf::MessageLite& msg) {
  grpc::ByteBuffer out;
  bool own = false;
  // The same serializer a generated stub uses.
  grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::MessageLite>(msg, &out, &own);
  return out;
}

// Calls fn(record) for each framed record; false on malformed framing.
template <typename Fn>
bool ForEachFramed(std::string_view framed, Fn&& fn) {
  const auto* p = reinterpret_cast<const uint8_t*>(framed.data());
  const auto* end = p + framed.size();
  while (p < end) {
    if (*p++ != kTagFramedRecord) return false;
    std::string_view record;
    if (!wire::ReadBytes(p, end, &record)) return false;
    fn(record);
  }
  return true;
}

}  // namespace

size_t MakeIngestHeader(bool batch, RecordType type, int64_t offset, size_t payload_size,
                        uint8_t* out) {
  const uint64_t off = static_cast<uint64_t>(offset);
  const uint64_t inner = 1 + VarintSize(off) + 1 + VarintSize(payload_size) + payload_size;
  size_t n = 0;
  out[n++] = batch ? kTagIngestBatch : kTagIngestRecord;
  n += WriteVarint(inner, out + n);
  out[n++] = kTagOffsetId;
  n += WriteVarint(off, out + n);
  out[n++] = type == RecordType::kJson ? kTagJsonPayload : kTagProtoPayload;
  n += WriteVarint(payload_size, out + n);
  return n;
}

grpc::ByteBuffer MakeIngestRequest(bool batch, RecordType type, int64_t offset,
                                   const std::shared_ptr<arrow::Buffer>& owner,
                                   std::string_view bytes, bool zero_copy) {
  if (zero_copy) {
    uint8_t header[kMaxIngestHeader];
    const size_t n = MakeIngestHeader(batch, type, offset, bytes.size(), header);
    if (bytes.empty()) {
      grpc::Slice head(header, n);
      return grpc::ByteBuffer(&head, 1);
    }
    grpc::Slice slices[2] = {
        grpc::Slice(header, n),
        // The slice borrows the caller's bytes; the arrow::Buffer lives until gRPC drops it.
        grpc::Slice(const_cast<char*>(bytes.data()), bytes.size(), &ReleaseOwner,
                    new std::shared_ptr<arrow::Buffer>(owner))};
    return grpc::ByteBuffer(slices, 2);
  }
  pb::EphemeralStreamRequest req;
  if (batch) {
    auto* b = req.mutable_ingest_record_batch();
    b->set_offset_id(offset);
    if (type == RecordType::kJson) {
      auto* records = b->mutable_json_batch()->mutable_records();
      ForEachFramed(bytes, [&](std::string_view r) { records->Add(std::string(r)); });
    } else {
      auto* records = b->mutable_proto_encoded_batch()->mutable_records();
      ForEachFramed(bytes, [&](std::string_view r) { records->Add(std::string(r)); });
    }
  } else {
    auto* r = req.mutable_ingest_record();
    r->set_offset_id(offset);
    if (type == RecordType::kJson) {
      r->set_json_record(std::string(bytes));
    } else {
      r->set_proto_encoded_record(std::string(bytes));
    }
  }
  return SerializeMessage(req);
}

grpc::ByteBuffer MakeCreateStreamRequest(const std::string& table_name, RecordType type,
                                         const DescriptorProto* descriptor) {
  pb::EphemeralStreamRequest req;
  auto* create = req.mutable_create_stream();
  create->set_table_name(table_name);
  create->set_record_type(type == RecordType::kJson ? pb::JSON : pb::PROTO);
  if (descriptor != nullptr) create->set_descriptor_proto(descriptor->SerializeAsString());
  return SerializeMessage(req);
}

arrow::Result<int64_t> CountFramedRecords(std::string_view framed) {
  int64_t count = 0;
  const char* base = framed.data();
  const char* last = base;
  const bool ok = ForEachFramed(framed, [&](std::string_view r) {
    ++count;
    last = r.data() + r.size();
  });
  if (!ok) {
    return arrow::Status::Invalid("framed records are malformed after record ", count,
                                  " (byte offset ", last - base,
                                  "): expected entries 0x0A <varint length> <record>");
  }
  return count;
}

bool ParseResponse(grpc::ByteBuffer* buffer, pb::EphemeralStreamResponse* out) {
  return grpc::GenericDeserialize<grpc::ProtoBufferReader, pb::EphemeralStreamResponse>(buffer, out)
      .ok();
}

}  // namespace arrow_zerobus::internal

// ---- the EphemeralStream protocol ---------------------------------------------------------------

namespace arrow_zerobus::internal {

arrow::Status ProtocolError(std::string what, bool retryable) {
  return MakeError(ErrorKind::kTransmission, retryable, "protocol error from the server: " + what);
}

namespace {

class EphemeralProtocol : public WireProtocol {
 public:
  explicit EphemeralProtocol(const StreamOptions& options)
      : type_(options.record_type),
        zero_copy_(options.zero_copy),
        create_(MakeCreateStreamRequest(
            options.table_name, options.record_type,
            options.record_type == RecordType::kProto ? &*options.descriptor : nullptr)) {}

  const char* method() const override { return kEphemeralStreamMethod; }
  grpc::ByteBuffer OpenRequest() const override { return create_; }

  arrow::Result<grpc::ByteBuffer> Frame(const OutgoingRequest& request,
                                        int64_t offset) const override {
    return MakeIngestRequest(request.batch, type_, offset, request.owner, request.bytes,
                             zero_copy_);
  }

  void Parse(grpc::ByteBuffer* message, bool opened,
             std::vector<WireEvent>* events) const override {
    pb::EphemeralStreamResponse msg;
    WireEvent ev;
    if (!ParseResponse(message, &msg)) {
      ev.error = ProtocolError("unparseable EphemeralStreamResponse");
      events->push_back(std::move(ev));
      return;
    }
    switch (msg.payload_case()) {
      case pb::EphemeralStreamResponse::kCreateStreamResponse:
        if (opened) return;
        ev.kind = WireEvent::Kind::kOpened;
        ev.stream_id = msg.create_stream_response().stream_id();
        break;
      case pb::EphemeralStreamResponse::kIngestRecordResponse:
        if (!msg.ingest_record_response().has_durability_ack_up_to_offset()) {
          ev.error = ProtocolError("ack without durability_ack_up_to_offset");
          break;
        }
        ev.kind = WireEvent::Kind::kAckOffset;
        ev.value = msg.ingest_record_response().durability_ack_up_to_offset();
        break;
      case pb::EphemeralStreamResponse::kCloseStreamSignal: {
        const auto& d = msg.close_stream_signal().duration();
        // Clamped: a duration of centuries means "as long as it takes" here.
        ev.kind = WireEvent::Kind::kCloseSignal;
        ev.close_after = std::chrono::milliseconds{
            std::min<int64_t>(d.seconds(), 1'000'000'000) * 1000 + d.nanos() / 1'000'000};
        break;
      }
      default:
        return;  // unknown payloads from a newer server are ignored
    }
    events->push_back(std::move(ev));
  }

 private:
  RecordType type_;
  bool zero_copy_;
  grpc::ByteBuffer create_;
};

}  // namespace

std::unique_ptr<WireProtocol> MakeEphemeralProtocol(const StreamOptions& options) {
  return std::make_unique<EphemeralProtocol>(options);
}

}  // namespace arrow_zerobus::internal
