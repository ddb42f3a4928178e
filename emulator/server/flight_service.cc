// Arrow Flight DoPut, served on the Zerobus port the way the vendor SDKs' Arrow stream expects
// (Flight fact sheet): the schema message first, validated against the table before the ready
// PutResult; then one record batch per FlightData with {"offset_id":N} metadata, stored in the
// same tables as the protobuf stream and acknowledged cumulatively in messages and rows once
// durable. Not arrow::flight's server: it refuses a first message without a descriptor, which
// is what the vendor clients send. FlightData is read from the wire bytes and the IPC message
// decoded with Arrow's IPC reader, the body buffers pointing into gRPC's slice.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include <arrow/buffer.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/message.h>
#include <arrow/ipc/reader.h>
#include <arrow/record_batch.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "decode/flight_schema.h"
#include "decode/table_schema.h"
#include "server/ingest_reactor_internal.h"

namespace arrow_zerobus::emulator {

namespace {

// ---- wire -------------------------------------------------------------------------------------

// The FlightData fields (Flight.proto) the server looks at; views into the received bytes.
struct FlightDataView {
  std::string_view descriptor;    // 1 (ignored: the table comes from the header)
  std::string_view header;        // 2 data_header: one IPC Message flatbuffer
  std::string_view app_metadata;  // 3
  std::string_view body;          // 1000 data_body
};

bool ParseFlightData(std::string_view bytes, FlightDataView* out) {
  wire::Reader r(bytes);
  while (!r.done()) {
    uint64_t tag;
    if (!r.Tag(&tag)) return false;
    uint32_t wire_type = static_cast<uint32_t>(tag & 7);
    std::string_view* dest = nullptr;
    switch (tag >> 3) {
      case 1: dest = &out->descriptor; break;
      case 2: dest = &out->header; break;
      case 3: dest = &out->app_metadata; break;
      case 1000: dest = &out->body; break;
      default: break;
    }
    if (dest ? (wire_type != 2 || !r.Bytes(dest)) : !r.Skip(wire_type)) return false;
  }
  return true;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytesField(std::string* out, uint32_t field, std::string_view bytes) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}

// PutResult { bytes app_metadata = 1; } holding compact JSON, as the vendor clients parse it.
std::string PutResultBytes(int64_t ack_offset, int64_t ack_records,
                           std::optional<int64_t> close_stream_duration_ms = std::nullopt) {
  std::string json = "{\"ack_up_to_offset\":" + std::to_string(ack_offset) +
                     ",\"ack_up_to_records\":" + std::to_string(ack_records);
  if (close_stream_duration_ms) {
    json += ",\"close_stream_duration_ms\":" + std::to_string(*close_stream_duration_ms);
  }
  json += "}";
  std::string out;
  PutBytesField(&out, 1, json);
  return out;
}

// INVALID_ARGUMENT with grpc-status-details-bin = google.rpc.Status holding the ErrorInfo the
// newer vendor clients turn into InvalidSchema with its causes.
grpc::Status SchemaRejection(const FlightSchemaCheck& check, const std::string& table) {
  std::string message = check.Message(table);
  std::string causes;
  for (const auto& c : check.causes) causes += (causes.empty() ? "" : ",") + c;
  std::string info;  // google.rpc.ErrorInfo
  PutBytesField(&info, 1, "SCHEMA_VALIDATION_FAILED");
  PutBytesField(&info, 2, "zerobus.databricks.com");
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"causes", causes},
                                   {"error_code", "8001"}}) {
    std::string entry;  // map<string, string> entry
    PutBytesField(&entry, 1, key);
    PutBytesField(&entry, 2, value);
    PutBytesField(&info, 3, entry);
  }
  std::string any;  // google.protobuf.Any
  PutBytesField(&any, 1, "type.googleapis.com/google.rpc.ErrorInfo");
  PutBytesField(&any, 2, info);
  std::string status;  // google.rpc.Status
  PutVarint(&status, (1 << 3) | 0);
  PutVarint(&status, static_cast<uint64_t>(grpc::StatusCode::INVALID_ARGUMENT));
  PutBytesField(&status, 2, message);
  PutBytesField(&status, 3, any);
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message, status);
}

// An Arrow buffer over bytes of a gRPC slice, keeping the slice alive (zero-copy bodies).
class SliceBuffer final : public arrow::Buffer {
 public:
  SliceBuffer(grpc::Slice slice, std::string_view bytes)
      : arrow::Buffer(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int64_t>(bytes.size())),
        slice_(std::move(slice)) {}

 private:
  grpc::Slice slice_;
};

std::string Abbrev(std::string_view s) {
  constexpr size_t kMax = 80;
  return s.size() <= kMax ? std::string(s) : std::string(s.substr(0, kMax)) + "...";
}

// The offset_id of a data message's app_metadata ({"offset_id":N}); nullopt if it is not that.
std::optional<int64_t> ParseOffsetId(std::string_view app_metadata) {
  auto j = nlohmann::json::parse(app_metadata, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("offset_id");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// Vendor clients raise a schema rejection as InvalidSchema only when it reaches them once they
// wait for the ready signal; a status right after the schema message races with the client's
// own setup (observed with the 1.10.0 Python SDK: about one rejection in five came out as a
// generic CreateStreamError). The real service takes its time to look up the table anyway.
constexpr std::chrono::milliseconds kRejectionDelay{100};

// ---- the reactor ------------------------------------------------------------------------------

// One DoPut RPC: setup and schema on the first message, then record batches converted to the
// table's rows (the shared reactor does acks, faults, back-pressure and lifetime).
class FlightPutReactor final : public IngestReactor {
 public:
  using IngestReactor::IngestReactor;

 private:
  grpc::Status EndedBeforeOpen() const override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "DoPut ended before its schema message");
  }
  std::string NotOpenedText() const override { return "arrow stream not opened"; }

  std::string AckLocked() const override { return PutResultBytes(acked_offset_, acked_rows_); }
  bool AcksRows() const override { return true; }

  // Flight's close signal: a PutResult with close_stream_duration_ms, carrying the current
  // watermark (older clients read every PutResult as an ack).
  std::string CloseSignalLocked(int64_t ms) const override {
    return PutResultBytes(acked_offset_, acked_rows_, ms);
  }

  bool HandleMessage() override {
    std::optional<std::string_view> received = ReceivedBytes();
    if (!received) return false;
    std::string_view bytes = *received;
    int64_t limit = std::max(svc_->max_message_bytes, kFlightMinMessageBytes);
    if (static_cast<int64_t>(bytes.size()) > limit) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "FlightData of " + std::to_string(bytes.size()) + " bytes; the limit is " +
                        std::to_string(limit) + " bytes per message");
    }
    FlightDataView data;
    if (!ParseFlightData(bytes, &data)) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "request is not a serialized arrow.flight.protocol.FlightData");
    }
    if (!opened_ && !Setup()) return false;
    if (data.header.empty()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "FlightData without data_header (an Arrow IPC message is required)");
    }
    // The flatbuffer is small: copy it to an aligned buffer. The body stays in the slice; Arrow
    // copies only buffers that are not aligned for their type.
    auto header = arrow::AllocateBuffer(static_cast<int64_t>(data.header.size()));
    if (!header.ok()) return Refuse(grpc::StatusCode::INTERNAL, header.status().ToString());
    std::memcpy((*header)->mutable_data(), data.header.data(), data.header.size());
    auto body = std::make_shared<SliceBuffer>(received_slice(), data.body);
    auto message = arrow::ipc::Message::Open(std::move(*header), std::move(body));
    if (!message.ok()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "data_header is not an Arrow IPC message: " + message.status().message());
    }
    if (!opened_) return HandleSchema(**message);
    return HandleBatch(**message, data.app_metadata, static_cast<int64_t>(bytes.size()));
  }

  // Auth and table, as create_stream on the protobuf stream, when the first message arrives
  // (the client sends the schema at once). The header is the only place the table is named.
  bool Setup() {
    if (!CheckToken()) return false;
    std::string header_table = MetadataValue(ctx_, kTableHeader);
    if (header_table.empty()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    std::string("missing metadata header ") + kTableHeader +
                        " (the table of an Arrow Flight stream)");
    }
    auto parts = SplitTableName(header_table);
    if (!parts.ok()) return Refuse(grpc::StatusCode::INVALID_ARGUMENT, parts.status().message());
    table_name_ = header_table;
    return CheckTableAccess(header_table);
  }

  bool HandleSchema(const arrow::ipc::Message& message) {
    if (message.type() != arrow::ipc::MessageType::SCHEMA) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "the first FlightData of a DoPut must carry the Arrow schema, got a " +
                        arrow::ipc::FormatMessageType(message.type()) + " message");
    }
    auto schema = arrow::ipc::ReadSchema(message, &dictionaries_);
    if (!schema.ok()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "cannot read the Arrow schema message: " + schema.status().message());
    }
    auto table = OpenTable(**schema);
    if (!table.ok()) {
      if (rejection_) return RefuseLater(*std::move(rejection_), kRejectionDelay);
      grpc::Status st = StatusFromArrow(table.status());
      return Refuse(st.error_code(), st.error_message());
    }
    table_ = *table;
    FlightSchemaCheck check = CheckFlightSchema(**schema, *table_->schema());
    if (!check.ok()) return RefuseLater(SchemaRejection(check, table_->name()), kRejectionDelay);
    source_of_column_ = std::move(check.source_of_column);
    schema_ = *schema;
    auto stats = NewStats(table_->name(), "arrow");
    Opened(std::move(stats), PutResultBytes(-1, 0));  // the ready signal
    return true;
  }

  // The declared/existing table, or (not strict) a new one made from the Flight schema when
  // that schema is the canonical one for it; a non-canonical schema for a new table is rejected
  // like a mismatch (rejection_ set) and creates nothing.
  arrow::Result<std::shared_ptr<Table>> OpenTable(const arrow::Schema& flight) {
    auto existing = svc_->store->OpenExisting(table_name_);
    if (existing.ok() || !existing.status().IsKeyError() || svc_->store->options().strict) {
      return existing;
    }
    ARROW_ASSIGN_OR_RAISE(auto schema, NormalizeTableSchema(flight));
    FlightSchemaCheck check = CheckFlightSchema(flight, *schema);
    if (!check.ok()) {
      rejection_ = SchemaRejection(check, table_name_);
      return arrow::Status::Invalid(rejection_->error_message());
    }
    arrow::Status declared = svc_->store->Declare(table_name_, schema);
    // Another stream may have created it meanwhile (another schema is caught by the caller).
    if (!declared.ok() && !declared.IsAlreadyExists()) return declared;
    return svc_->store->OpenExisting(table_name_);
  }

  bool HandleBatch(const arrow::ipc::Message& message, std::string_view app_metadata,
                   int64_t message_bytes) {
    std::optional<int64_t> offset = ParseOffsetId(app_metadata);
    if (!offset) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "data message " + std::to_string(next_offset_) +
                        ": app_metadata must be {\"offset_id\":N}, got '" + Abbrev(app_metadata) +
                        "'");
    }
    if (*offset != next_offset_) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "Non-incremental offset: expected " + std::to_string(next_offset_) +
                        ", actual " + std::to_string(*offset));
    }
    std::string where = "offset_id " + std::to_string(*offset) + ": ";
    if (message.type() != arrow::ipc::MessageType::RECORD_BATCH) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    where + "expected an Arrow record batch message, got a " +
                        arrow::ipc::FormatMessageType(message.type()) + " message");
    }
    arrow::ipc::IpcReadOptions options;
    options.use_threads = false;
    options.ensure_alignment = arrow::ipc::Alignment::kDataTypeSpecificAlignment;
    auto batch = arrow::ipc::ReadRecordBatch(message, schema_, &dictionaries_, options);
    if (!batch.ok()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    where + "the record batch does not match the schema message: " +
                        batch.status().message());
    }
    arrow::Status valid = (*batch)->ValidateFull();
    if (!valid.ok()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    where + "invalid record batch: " + valid.message());
    }
    auto rows = FlightBatchToTable(**batch, table_->schema(), source_of_column_);
    if (!rows.ok()) return Refuse(grpc::StatusCode::INVALID_ARGUMENT, where + rows.status().message());
    return Store(*offset, std::move(*rows), message_bytes);
  }

  // Read path only.
  std::string table_name_;
  std::shared_ptr<arrow::Schema> schema_;  // the DoPut's schema message
  arrow::ipc::DictionaryMemo dictionaries_;
  std::vector<int> source_of_column_;
  std::optional<grpc::Status> rejection_;
};

}  // namespace

std::shared_ptr<IngestReactor> MakeFlightPutReactor(ZerobusService* service,
                                                    const ServiceContext* svc,
                                                    grpc::GenericCallbackServerContext* ctx) {
  return std::make_shared<FlightPutReactor>(service, svc, ctx);
}

}  // namespace arrow_zerobus::emulator
