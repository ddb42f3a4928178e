#include "transport/flight_wire_internal.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <arrow/array.h>
#include <arrow/array/builder_base.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/compression.h>
#include <grpcpp/support/slice.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/log.h"
#include "common/proto_wire.h"
#include "transport/protocol_internal.h"
#include "transport/wire_internal.h"

namespace arrow_zerobus::internal {

namespace {

// FlightData fields (Flight.proto): data_header 2, app_metadata 3, data_body 1000; all bytes.
constexpr uint8_t kTagDataHeader = (2 << 3) | 2;
constexpr uint8_t kTagAppMetadata = (3 << 3) | 2;
constexpr uint32_t kTagDataBody = (1000 << 3) | 2;
// PutResult.app_metadata
constexpr uint32_t kFieldPutResultMetadata = 1;

constexpr uint8_t kZeroPadding[8] = {0, 0, 0, 0, 0, 0, 0, 0};

void ReleaseBuffer(void* user_data) {
  delete static_cast<std::shared_ptr<arrow::Buffer>*>(user_data);
}

// Bytes `tag <varint len>` in front of a length-delimited field.
void AppendFieldHead(uint64_t tag, uint64_t size, std::string* out) {
  uint8_t tmp[20];
  int n = WriteVarint(tag, tmp);
  n += WriteVarint(size, tmp + n);
  out->append(reinterpret_cast<const char*>(tmp), static_cast<size_t>(n));
}

// IPC body buffers are laid out back to back, each padded to 8 bytes (the offsets the writer
// recorded in the header follow the same rule; EncodeFlightPiece checks the total).
int64_t PaddedSize(int64_t size) { return (size + 7) & ~int64_t{7}; }

int64_t BodyBytes(const arrow::ipc::IpcPayload& payload) {
  int64_t total = 0;
  for (const auto& b : payload.body_buffers) {
    if (b && b->size() > 0) total += PaddedSize(b->size());
  }
  return total;
}

bool HasNestedDictionary(const arrow::DataType& type) {
  for (const auto& child : type.fields()) {
    if (child->type()->id() == arrow::Type::DICTIONARY) return true;
    if (HasNestedDictionary(*child->type())) return true;
  }
  return false;
}

// Calls fn(field, wire_type, varint, bytes) for each field of a protobuf message; false when the
// bytes are not a message (fixed32/64 fields are skipped).
template <typename Fn>
bool ForEachField(std::string_view in, Fn&& fn) {
  wire::Reader r(in);
  while (!r.done()) {
    uint64_t key = 0;
    if (!r.Tag(&key)) return false;
    const auto wire_type = static_cast<uint32_t>(key & 7);
    uint64_t v = 0;
    std::string_view bytes;
    if (wire_type == 0) {
      if (!r.Varint(&v)) return false;
    } else if (wire_type == 2) {
      if (!r.Bytes(&bytes)) return false;
    } else {
      if (!r.Skip(wire_type)) return false;
      continue;
    }
    fn(static_cast<uint32_t>(key >> 3), static_cast<int>(wire_type), v, bytes);
  }
  return true;
}

std::string Flatten(grpc::ByteBuffer* message) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!message->Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

bool JsonInt64(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return false;
    }
    *out = v.get<int64_t>();
    return true;
  }
  return false;
}

}  // namespace

arrow::Result<arrow::ipc::IpcWriteOptions> FlightIpcOptions(IpcCompression compression) {
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  options.metadata_version = arrow::ipc::MetadataVersion::V5;
  options.alignment = 64;
  if (compression != IpcCompression::kNone) {
    const auto type = compression == IpcCompression::kZstd ? arrow::Compression::ZSTD
                                                           : arrow::Compression::LZ4_FRAME;
    auto codec = arrow::util::Codec::Create(type);
    if (!codec.ok()) {
      return ConfigurationError("ipc_compression " + arrow::util::Codec::GetCodecAsString(type) +
                                " is not available in this Arrow build: " +
                                codec.status().message());
    }
    options.codec = std::shared_ptr<arrow::util::Codec>(std::move(*codec));
  }
  return options;
}

std::shared_ptr<arrow::Schema> FlightWireSchema(const arrow::Schema& schema) {
  arrow::FieldVector fields;
  fields.reserve(schema.num_fields());
  for (const auto& f : schema.fields()) {
    if (f->type()->id() == arrow::Type::DICTIONARY) {
      fields.push_back(
          f->WithType(static_cast<const arrow::DictionaryType&>(*f->type()).value_type()));
    } else {
      fields.push_back(f);
    }
  }
  return arrow::schema(std::move(fields), schema.metadata());
}

arrow::Status CheckFlightSchema(const arrow::Schema& schema) {
  for (int i = 0; i < schema.num_fields(); ++i) {
    const auto& f = schema.field(i);
    const auto& type = f->type()->id() == arrow::Type::DICTIONARY
                           ? static_cast<const arrow::DictionaryType&>(*f->type()).value_type()
                           : f->type();
    if (type->id() == arrow::Type::DICTIONARY || HasNestedDictionary(*type)) {
      return arrow::Status::Invalid("field ", i, " '", f->name(), "' (", f->type()->ToString(),
                                    ") has a dictionary inside a nested type, which the Arrow "
                                    "Flight stream does not send (decode it first)");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> HydrateDictionaries(
    const std::shared_ptr<arrow::RecordBatch>& batch,
    const std::shared_ptr<arrow::Schema>& wire_schema) {
  bool any = false;
  arrow::ArrayVector columns = batch->columns();
  for (int i = 0; i < batch->num_columns(); ++i) {
    if (columns[i]->type_id() != arrow::Type::DICTIONARY) continue;
    any = true;
    const auto& dict = static_cast<const arrow::DictionaryArray&>(*columns[i]);
    ARROW_ASSIGN_OR_RAISE(auto builder, arrow::MakeBuilder(dict.dictionary()->type()));
    ARROW_RETURN_NOT_OK(builder->Reserve(dict.length()));
    const arrow::ArraySpan values(*dict.dictionary()->data());
    for (int64_t r = 0; r < dict.length(); ++r) {
      if (dict.IsNull(r)) {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(builder->AppendArraySlice(values, dict.GetValueIndex(r), 1));
      }
    }
    ARROW_ASSIGN_OR_RAISE(columns[i], builder->Finish());
  }
  if (!any) return batch;
  return arrow::RecordBatch::Make(wire_schema, batch->num_rows(), std::move(columns));
}

std::string DescribeSchemaMismatch(const arrow::Schema& batch, const arrow::Schema& stream) {
  if (batch.Equals(stream, /*check_metadata=*/true)) return "";
  if (batch.num_fields() != stream.num_fields()) {
    return "the batch has " + std::to_string(batch.num_fields()) +
           " fields but the stream's schema has " + std::to_string(stream.num_fields());
  }
  for (int i = 0; i < batch.num_fields(); ++i) {
    const auto& b = *batch.field(i);
    const auto& s = *stream.field(i);
    const std::string which = "field " + std::to_string(i) + " '" + s.name() + "'";
    if (b.name() != s.name()) {
      return "field " + std::to_string(i) + " is named '" + b.name() +
             "' in the batch but '" + s.name() + "' in the stream's schema";
    }
    if (!b.type()->Equals(*s.type())) {
      return which + " is " + b.type()->ToString() + " in the batch but " + s.type()->ToString() +
             " in the stream's schema";
    }
    if (b.nullable() != s.nullable()) {
      return which + " is " + (b.nullable() ? "nullable" : "not nullable") +
             " in the batch but " + (s.nullable() ? "nullable" : "not nullable") +
             " in the stream's schema";
    }
    if (!b.Equals(s, /*check_metadata=*/true)) {
      return which + " has different field metadata in the batch";
    }
  }
  return "the schema metadata differs";
}

std::vector<RecordRange> SplitForFlight(const arrow::RecordBatch& batch, int64_t piece_bytes) {
  const int64_t rows = batch.num_rows();
  int64_t size = 0;
  for (const auto& column : batch.columns()) {
    auto referenced = arrow::util::ReferencedBufferSize(*column);
    size += referenced.ok() ? *referenced : arrow::util::TotalBufferSize(*column);
  }
  const int64_t pieces = std::max<int64_t>(1, (size + piece_bytes - 1) / piece_bytes);
  const int64_t per_piece = std::max<int64_t>(1, rows / pieces);
  std::vector<RecordRange> out;
  for (int64_t begin = 0; begin < rows; begin += per_piece) {
    out.push_back(RecordRange{begin, std::min(rows, begin + per_piece)});
  }
  return out;
}

arrow::Result<std::shared_ptr<FlightPiece>> EncodeFlightPiece(
    std::shared_ptr<arrow::RecordBatch> rows, const arrow::ipc::IpcWriteOptions& options) {
  auto piece = std::make_shared<FlightPiece>();
  ARROW_RETURN_NOT_OK(arrow::ipc::GetRecordBatchPayload(*rows, options, &piece->payload));
  if (BodyBytes(piece->payload) != piece->payload.body_length) {
    // The hand framing lays the buffers out as Arrow's IPC writer does; if a future Arrow changes
    // the layout, fail loudly instead of sending a body that does not match its header.
    return arrow::Status::Invalid("IPC body layout not understood: buffers take ",
                                  BodyBytes(piece->payload), " bytes, header says ",
                                  piece->payload.body_length);
  }
  piece->wire_bytes = piece->payload.metadata->size() + piece->payload.body_length;
  piece->rows = std::move(rows);
  return piece;
}

arrow::Result<grpc::ByteBuffer> MakeSchemaFlightData(const arrow::Schema& schema,
                                                     const arrow::ipc::IpcWriteOptions& options) {
  arrow::ipc::IpcPayload payload;
  arrow::ipc::DictionaryFieldMapper mapper(schema);
  ARROW_RETURN_NOT_OK(arrow::ipc::GetSchemaPayload(schema, options, mapper, &payload));
  std::string bytes;
  AppendFieldHead(kTagDataHeader, static_cast<uint64_t>(payload.metadata->size()), &bytes);
  bytes.append(reinterpret_cast<const char*>(payload.metadata->data()),
               static_cast<size_t>(payload.metadata->size()));
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer MakePieceFlightData(const std::shared_ptr<const FlightPiece>& piece,
                                     int64_t offset_id) {
  const auto& payload = piece->payload;
  // Header and app_metadata are small: one copied slice. Written compactly, as the vendor does.
  const std::string metadata = "{\"offset_id\":" + std::to_string(offset_id) + "}";
  std::string head;
  head.reserve(static_cast<size_t>(payload.metadata->size()) + metadata.size() + 32);
  AppendFieldHead(kTagDataHeader, static_cast<uint64_t>(payload.metadata->size()), &head);
  head.append(reinterpret_cast<const char*>(payload.metadata->data()),
              static_cast<size_t>(payload.metadata->size()));
  AppendFieldHead(kTagAppMetadata, metadata.size(), &head);
  head += metadata;
  AppendFieldHead(kTagDataBody, static_cast<uint64_t>(payload.body_length), &head);

  std::vector<grpc::Slice> slices;
  slices.reserve(1 + 2 * payload.body_buffers.size());
  slices.emplace_back(head);
  for (const auto& buffer : payload.body_buffers) {
    if (!buffer || buffer->size() == 0) continue;
    // Borrowed: the slice holds the Arrow buffer until gRPC has written it.
    slices.emplace_back(const_cast<uint8_t*>(buffer->data()), static_cast<size_t>(buffer->size()),
                        &ReleaseBuffer, new std::shared_ptr<arrow::Buffer>(buffer));
    const int64_t pad = PaddedSize(buffer->size()) - buffer->size();
    if (pad > 0) slices.emplace_back(grpc::Slice(kZeroPadding, static_cast<size_t>(pad)));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

arrow::Result<FlightAck> ParsePutResult(grpc::ByteBuffer* message) {
  const std::string bytes = Flatten(message);
  std::string_view metadata;
  const bool parsed = ForEachField(bytes, [&](uint32_t field, int wire_type, uint64_t,
                                              std::string_view value) {
    if (field == kFieldPutResultMetadata && wire_type == 2) metadata = value;
  });
  if (!parsed) return arrow::Status::Invalid("not a PutResult message");
  if (metadata.empty()) return arrow::Status::Invalid("PutResult with empty app_metadata");
  auto json = nlohmann::json::parse(metadata, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return arrow::Status::Invalid("PutResult app_metadata is not a JSON object");
  }
  FlightAck ack;
  auto offset = json.find("ack_up_to_offset");
  auto records = json.find("ack_up_to_records");
  if (offset == json.end() || !JsonInt64(*offset, &ack.ack_up_to_offset)) {
    return arrow::Status::Invalid("PutResult without an integer ack_up_to_offset");
  }
  if (records == json.end() || !JsonInt64(*records, &ack.ack_up_to_records) ||
      ack.ack_up_to_records < 0) {
    return arrow::Status::Invalid("PutResult without a non-negative integer ack_up_to_records");
  }
  auto close = json.find("close_stream_duration_ms");
  if (close != json.end() && !close->is_null()) {
    int64_t ms = 0;
    if (!JsonInt64(*close, &ms) || ms < 0) {
      return arrow::Status::Invalid("PutResult close_stream_duration_ms is not a duration");
    }
    ack.close_stream_duration_ms = ms;
  }
  return ack;
}

std::optional<SchemaRejection> ParseSchemaRejection(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) return std::nullopt;
  const std::string& details = status.error_details();  // google.rpc.Status
  std::optional<SchemaRejection> out;
  ForEachField(details, [&](uint32_t field, int wire_type, uint64_t, std::string_view any) {
    if (field != 3 || wire_type != 2 || out) return;  // Status.details (google.protobuf.Any)
    std::string_view type_url, value;
    ForEachField(any, [&](uint32_t f, int wt, uint64_t, std::string_view b) {
      if (wt != 2) return;
      if (f == 1) type_url = b;
      if (f == 2) value = b;
    });
    if (type_url.size() < 20 || type_url.substr(type_url.size() - 20) != "google.rpc.ErrorInfo") {
      return;
    }
    std::string_view reason;
    SchemaRejection r;
    ForEachField(value, [&](uint32_t f, int wt, uint64_t, std::string_view b) {
      if (wt != 2) return;
      if (f == 1) reason = b;
      if (f != 3) return;  // metadata map entry {key 1, value 2}
      std::string_view key, val;
      ForEachField(b, [&](uint32_t ef, int ewt, uint64_t, std::string_view eb) {
        if (ewt != 2) return;
        if (ef == 1) key = eb;
        if (ef == 2) val = eb;
      });
      if (key == "causes") r.causes = std::string(val);
      int code = 0;
      if (key == "error_code" &&
          std::from_chars(val.data(), val.data() + val.size(), code).ptr == val.data() + val.size()) {
        r.error_code = code;
      }
    });
    if (reason != "SCHEMA_VALIDATION_FAILED") return;
    r.message = status.error_message();
    out = std::move(r);
  });
  return out;
}

}  // namespace arrow_zerobus::internal

// ---- the Arrow Flight DoPut protocol ------------------------------------------------------------

namespace arrow_zerobus::internal {

namespace {

// The vendor clients clamp a rotation request to a year.
constexpr int64_t kMaxCloseAfterMs = 365LL * 24 * 3600 * 1000;

class FlightProtocol : public WireProtocol {
 public:
  FlightProtocol(std::string table, arrow::ipc::IpcWriteOptions ipc, grpc::ByteBuffer schema)
      : table_(std::move(table)), ipc_(std::move(ipc)), schema_(std::move(schema)) {}

  const char* method() const override { return kFlightDoPutMethod; }
  grpc::ByteBuffer OpenRequest() const override { return schema_; }

  arrow::Result<grpc::ByteBuffer> Frame(const OutgoingRequest& request,
                                        int64_t offset) const override {
    if (request.skip_rows == 0) return MakePieceFlightData(request.piece, offset);
    // Partly acked on an earlier DoPut: only its unacked rows go again, encoded afresh.
    const auto& rows = request.piece->rows;
    ARROW_ASSIGN_OR_RAISE(
        auto suffix,
        EncodeFlightPiece(rows->Slice(request.skip_rows, rows->num_rows() - request.skip_rows),
                          ipc_));
    return MakePieceFlightData(suffix, offset);
  }

  void Parse(grpc::ByteBuffer* message, bool opened,
             std::vector<WireEvent>* events) const override {
    auto ack = ParsePutResult(message);
    WireEvent ev;
    if (!opened) {
      // The first PutResult of a DoPut must be the ready signal.
      if (!ack.ok()) {
        ev.error = ProtocolError("malformed setup response (" + ack.status().message() +
                                 "), expected the ready signal");
      } else if (ack->ack_up_to_offset != -1) {
        ev.error = ProtocolError("expected the ready signal (ack_up_to_offset -1), got an ack "
                                 "for offset " + std::to_string(ack->ack_up_to_offset),
                                 /*retryable=*/true);
      } else {
        ev.kind = WireEvent::Kind::kOpened;
      }
      events->push_back(std::move(ev));
      return;
    }
    if (!ack.ok()) {
      // As the vendor clients do: an unreadable PutResult after setup is not fatal.
      Log(LogSeverity::kDebug, "stream to " + table_ + ": ignored PutResult: " +
                                   ack.status().message());
      return;
    }
    ev.kind = WireEvent::Kind::kAckRecords;
    ev.value = ack->ack_up_to_records;
    events->push_back(ev);
    if (ack->close_stream_duration_ms) {
      WireEvent close;
      close.kind = WireEvent::Kind::kCloseSignal;
      close.close_after =
          std::chrono::milliseconds(std::min(*ack->close_stream_duration_ms, kMaxCloseAfterMs));
      events->push_back(std::move(close));
    }
  }

  std::optional<arrow::Status> EndStatus(const grpc::Status& status) const override {
    auto rejection = ParseSchemaRejection(status);
    if (!rejection) return std::nullopt;
    std::string text = "stream to " + table_ + ": schema rejected by the server (causes: " +
                       (rejection->causes.empty() ? std::string("none given") : rejection->causes);
    if (rejection->error_code) text += "; error code " + std::to_string(*rejection->error_code);
    text += "): " + rejection->message;
    return MakeError(ErrorKind::kConfiguration, false, std::move(text),
                     static_cast<int>(status.error_code()), rejection->error_code);
  }

 private:
  std::string table_;
  arrow::ipc::IpcWriteOptions ipc_;
  grpc::ByteBuffer schema_;
};

}  // namespace

arrow::Result<std::unique_ptr<WireProtocol>> MakeFlightProtocol(const StreamOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto ipc, FlightIpcOptions(options.ipc_compression));
  ARROW_ASSIGN_OR_RAISE(auto schema,
                        MakeSchemaFlightData(*FlightWireSchema(*options.arrow_schema), ipc));
  return std::make_unique<FlightProtocol>(options.table_name, std::move(ipc), std::move(schema));
}

}  // namespace arrow_zerobus::internal
