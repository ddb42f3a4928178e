#include "server/stream_service_internal.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include <arrow/record_batch.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "decode/record_decoder.h"
#include "server/ingest_reactor_internal.h"

namespace arrow_zerobus::emulator {

namespace {

namespace zb = databricks::zerobus;
using json = nlohmann::json;

}  // namespace

std::string NewUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                            // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);            // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string MetadataValue(const grpc::GenericCallbackServerContext* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

grpc::Status StatusFromArrow(const arrow::Status& st, const std::string& prefix) {
  return grpc::Status(static_cast<grpc::StatusCode>(ToStatusCode(st)), prefix + st.message());
}

namespace {

// Records of a ProtoEncodedRecordBatch / JsonRecordBatch (both: repeated field 1).
bool ParseRecordList(std::string_view bytes, std::vector<std::string_view>* records) {
  wire::Reader r(bytes);
  while (!r.done()) {
    uint64_t tag;
    if (!r.Tag(&tag)) return false;
    if (tag == ((1 << 3) | 2)) {
      std::string_view rec;
      if (!r.Bytes(&rec)) return false;
      records->push_back(rec);
    } else if (!r.Skip(static_cast<uint32_t>(tag & 7))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ParseIngestWire(std::string_view message, WireIngest* out,
                     std::vector<std::string_view>* records) {
  wire::Reader top(message);
  std::string_view payload;
  int payloads = 0;
  while (!top.done()) {
    uint64_t tag;
    if (!top.Tag(&tag)) return false;
    uint64_t field = tag >> 3;
    if (field == 1) return false;  // create_stream
    if (field == 2 || field == 3) {
      if ((tag & 7) != 2 || !top.Bytes(&payload)) return false;
      out->batch = field == 3;
      ++payloads;
    } else if (!top.Skip(static_cast<uint32_t>(tag & 7))) {
      return false;
    }
  }
  if (payloads != 1) return false;  // none, or a oneof set twice: exact semantics elsewhere
  wire::Reader r(payload);
  bool has_offset = false;
  int record_fields = 0;
  size_t first = records->size();
  while (!r.done()) {
    uint64_t tag;
    if (!r.Tag(&tag)) return false;
    uint64_t field = tag >> 3;
    uint32_t wire_type = static_cast<uint32_t>(tag & 7);
    if (field == 1 && wire_type == 0) {
      uint64_t v;
      if (!r.Varint(&v)) return false;
      out->offset = static_cast<int64_t>(v);
      has_offset = true;
    } else if ((field == 2 || field == 3) && wire_type == 2) {
      std::string_view bytes;
      if (!r.Bytes(&bytes)) return false;
      out->json = field == 3;
      ++record_fields;
      if (!out->batch) {
        records->push_back(bytes);
      } else if (!ParseRecordList(bytes, records)) {
        return false;
      }
    } else if (field <= 3 || !r.Skip(wire_type)) {
      return false;  // a known field with an unexpected wire type, or malformed
    }
  }
  if (!has_offset || record_fields != 1) {
    records->resize(first);
    return false;
  }
  return true;
}

// One EphemeralStream RPC: create_stream, then ingest requests decoded into the table's rows
// (the shared reactor does acks, faults, back-pressure and lifetime).
class StreamReactor final : public IngestReactor {
 public:
  using IngestReactor::IngestReactor;

 private:
  grpc::Status EndedBeforeOpen() const override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "stream closed before create_stream");
  }
  std::string NotOpenedText() const override { return "stream not created"; }
  void ReleaseState() override { decoder_.reset(); }

  std::string AckLocked() const override {
    zb::EphemeralStreamResponse response;
    response.mutable_ingest_record_response()->set_durability_ack_up_to_offset(acked_offset_);
    return response.SerializeAsString();
  }

  std::string CloseSignalLocked(int64_t ms) const override {
    zb::EphemeralStreamResponse response;
    auto* d = response.mutable_close_stream_signal()->mutable_duration();
    d->set_seconds(ms / 1000);
    d->set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
    return response.SerializeAsString();
  }

  // ---- request dispatch -------------------------------------------------------------------

  bool HandleMessage() override {
    // Records stay views into the received bytes (never one allocation per record).
    std::optional<std::string_view> received = ReceivedBytes();
    if (!received) return false;
    std::string_view bytes = *received;
    if (opened_) {
      WireIngest wire;
      views_.clear();
      if (ParseIngestWire(bytes, &wire, &views_)) {
        return HandleIngest(wire.offset, wire.json, bytes.size());
      }
    }
    if (!request_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "request is not a serialized databricks.zerobus.EphemeralStreamRequest");
    }
    return opened_ ? HandleIngestMessage(bytes.size()) : HandleCreate();
  }

  // ---- create_stream --------------------------------------------------------------------

  bool HandleCreate() {
    if (request_.payload_case() != zb::EphemeralStreamRequest::kCreateStream) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "the first message of a stream must be create_stream");
    }
    const zb::CreateIngestStreamRequest& create = request_.create_stream();
    std::string header_table = MetadataValue(ctx_, kTableHeader);

    if (!CheckToken()) return false;
    if (!create.has_table_name() || create.table_name().empty()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT, "create_stream: table_name is missing");
    }
    const std::string& table_name = create.table_name();
    auto parts = SplitTableName(table_name);
    if (!parts.ok()) return Refuse(grpc::StatusCode::INVALID_ARGUMENT, parts.status().message());
    if (header_table.empty()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    std::string("missing metadata header ") + kTableHeader);
    }
    if (LowerAscii(header_table) != LowerAscii(table_name)) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    std::string("metadata header ") + kTableHeader + " '" + header_table +
                        "' does not match create_stream table_name '" + table_name + "'");
    }
    if (!CheckTableAccess(table_name)) return false;

    // Record type: absent (or explicitly unspecified) means PROTO. A value this proto2 enum does
    // not know lands in the unknown fields; refuse it rather than guess.
    for (int i = 0; i < create.unknown_fields().field_count(); ++i) {
      const auto& f = create.unknown_fields().field(i);
      if (f.number() == 4) {
        return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                      "create_stream: unsupported record_type " +
                          std::to_string(f.type() == google::protobuf::UnknownField::TYPE_VARINT
                                             ? static_cast<int64_t>(f.varint())
                                             : -1) +
                          " (expected PROTO = 1 or JSON = 2)");
      }
    }
    json_ = create.has_record_type() && create.record_type() == zb::JSON;

    DescriptorProto descriptor;
    bool has_descriptor = create.has_descriptor_proto() && !create.descriptor_proto().empty();
    if (has_descriptor) {
      if (!descriptor.ParseFromString(create.descriptor_proto())) {
        return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                      "create_stream: descriptor_proto is not a serialized "
                      "google.protobuf.DescriptorProto");
      }
      if (descriptor.field_size() == 0) {
        return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                      "create_stream: descriptor_proto '" + descriptor.name() +
                          "' has no fields");
      }
    } else if (!json_) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "create_stream: descriptor_proto is required for PROTO records");
    }

    arrow::Result<std::shared_ptr<Table>> table =
        has_descriptor ? svc_->store->OpenForWrite(table_name, descriptor)
                       : svc_->store->OpenExisting(table_name);
    if (!table.ok()) {
      grpc::Status st = StatusFromArrow(table.status(), "create_stream: ");
      return Refuse(st.error_code(), st.error_message());
    }
    table_ = *table;
    auto decoder = json_ ? RecordDecoder::MakeJson(table_->schema())
                         : RecordDecoder::MakeProto(descriptor, table_->schema());
    if (!decoder.ok()) {
      grpc::Status st = StatusFromArrow(decoder.status(), "create_stream: ");
      return Refuse(st.error_code(), st.error_message());
    }
    decoder_ = std::move(*decoder);

    auto stats = NewStats(table_->name(), json_ ? "JSON" : "PROTO");
    zb::EphemeralStreamResponse response;
    response.mutable_create_stream_response()->set_stream_id(stats->stream_id);
    Opened(std::move(stats), response.SerializeAsString());
    return true;
  }

  // ---- ingest -----------------------------------------------------------------------------

  // Ingest request parsed with the generated classes (unusual encodings, error cases).
  bool HandleIngestMessage(size_t message_bytes) {
    int64_t offset = -1;
    views_.clear();
    bool json_payload = false;
    switch (request_.payload_case()) {
      case zb::EphemeralStreamRequest::kIngestRecord: {
        const auto& r = request_.ingest_record();
        if (!r.has_offset_id()) {
          return Refuse(grpc::StatusCode::INVALID_ARGUMENT, "ingest_record: offset_id is missing");
        }
        offset = r.offset_id();
        if (r.record_case() == zb::IngestRecordRequest::kProtoEncodedRecord) {
          views_.push_back(r.proto_encoded_record());
        } else if (r.record_case() == zb::IngestRecordRequest::kJsonRecord) {
          views_.push_back(r.json_record());
          json_payload = true;
        } else {
          return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                        "ingest_record at offset " + std::to_string(offset) + " has no record");
        }
        break;
      }
      case zb::EphemeralStreamRequest::kIngestRecordBatch: {
        const auto& b = request_.ingest_record_batch();
        if (!b.has_offset_id()) {
          return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                        "ingest_record_batch: offset_id is missing");
        }
        offset = b.offset_id();
        if (b.batch_case() == zb::IngestRecordBatchRequest::kProtoEncodedBatch) {
          for (const auto& rec : b.proto_encoded_batch().records()) views_.push_back(rec);
        } else if (b.batch_case() == zb::IngestRecordBatchRequest::kJsonBatch) {
          for (const auto& rec : b.json_batch().records()) views_.push_back(rec);
          json_payload = true;
        } else {
          return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                        "ingest_record_batch at offset " + std::to_string(offset) +
                            " has no batch");
        }
        break;
      }
      case zb::EphemeralStreamRequest::kCreateStream:
        return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                      "create_stream sent twice on one stream");
      default:
        return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                      "request has no payload (expected ingest_record or ingest_record_batch)");
    }
    return HandleIngest(offset, json_payload, message_bytes);
  }

  // An ingest request whose records are in views_ (pointing into the received bytes).
  bool HandleIngest(int64_t offset, bool json_payload, size_t message_bytes) {
    int64_t wire_bytes = 0;
    if (offset != next_offset_) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "Non-incremental offset: got offset_id " + std::to_string(offset) +
                        ", expected " + std::to_string(next_offset_) +
                        " (offsets count requests 0, 1, 2, ... on each stream)");
    }
    if (static_cast<int64_t>(message_bytes) > svc_->max_message_bytes) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "request at offset " + std::to_string(offset) + " is " +
                        std::to_string(message_bytes) + " bytes; the limit is " +
                        std::to_string(svc_->max_message_bytes) + " bytes per message");
    }
    if (json_payload != json_) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "request at offset " + std::to_string(offset) + " carries " +
                        (json_payload ? "JSON" : "PROTO") + " records but the stream was created for " +
                        (json_ ? "JSON" : "PROTO") + " records");
    }
    for (std::string_view v : views_) wire_bytes += static_cast<int64_t>(v.size());

    auto batch = decoder_->Decode(std::span<const std::string_view>(views_));
    if (!batch.ok()) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "offset " + std::to_string(offset) + ": " + batch.status().message());
    }
    return Store(offset, std::move(*batch), wire_bytes);
  }

  // Read path only (one read at a time), no lock needed.
  zb::EphemeralStreamRequest request_;  // create_stream and unusual encodings
  std::vector<std::string_view> views_;
  std::unique_ptr<RecordDecoder> decoder_;
  bool json_ = false;
};

grpc::ServerGenericBidiReactor* ZerobusService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  std::shared_ptr<IngestReactor> reactor;
  if (context->method() == kEphemeralStreamMethod) {
    reactor = std::make_shared<StreamReactor>(this, &context_, context);
  } else if (context->method() == kFlightDoPutMethod) {
    reactor = MakeFlightPutReactor(this, &context_, context);
  } else {
    return grpc::CallbackGenericService::CreateReactor(context);  // UNIMPLEMENTED
  }
  reactor->Begin();
  return reactor.get();
}

void ZerobusService::Register(const std::shared_ptr<LiveStream>& stream) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.push_back(stream);
}

void ZerobusService::Unregister(const LiveStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.remove_if([&](const std::weak_ptr<LiveStream>& w) {
    auto p = w.lock();
    return !p || p.get() == stream;
  });
}

void ZerobusService::KickAll() {
  std::vector<std::shared_ptr<LiveStream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& w : live_) {
      if (auto p = w.lock()) streams.push_back(std::move(p));
    }
  }
  for (auto& s : streams) s->Kick();
}

// ---- stats ---------------------------------------------------------------------------------

void StatsRegistry::Add(std::shared_ptr<StreamStats> stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.push_back(std::move(stream));
  // Keep every open stream and the most recent closed ones.
  constexpr size_t kMaxClosedKept = 1000;
  size_t closed = 0;
  for (auto it = streams_.rbegin(); it != streams_.rend(); ++it) {
    if (!(*it)->open.load()) ++closed;
  }
  for (auto it = streams_.begin(); it != streams_.end() && closed > kMaxClosedKept;) {
    if (!(*it)->open.load()) {
      it = streams_.erase(it);
      --closed;
    } else {
      ++it;
    }
  }
}

json StatsRegistry::ToJson(const TableStore& store) const {
  json streams = json::array();
  std::map<std::string, std::pair<int64_t, int64_t>> per_table;  // open streams, acks
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : streams_) {
      json j = {{"stream_id", s->stream_id},
                {"table", s->table},
                {"record_type", s->record_type},
                {"open", s->open.load()},
                {"requests", s->requests.load()},
                {"rows", s->rows.load()},
                {"bytes", s->bytes.load()},
                {"acks", s->acks.load()},
                {"last_ack_offset", s->last_ack_offset.load()},
                {"close_signals", s->close_signals.load()}};
      if (!s->open.load()) {
        std::lock_guard<std::mutex> l(s->mu);
        j["status_code"] = s->final_code;
        j["status_message"] = s->final_message;
      }
      auto& t = per_table[s->table];
      if (s->open.load()) ++t.first;
      t.second += s->acks.load();
      streams.push_back(std::move(j));
    }
  }
  json tables = json::array();
  for (const auto& name : store.ListTables()) {
    auto st = store.Stats(name);
    if (!st.ok()) continue;
    auto t = per_table[name];
    tables.push_back({{"name", name},
                      {"rows", st->rows},
                      {"bytes", st->bytes},
                      {"commits", st->commits},
                      {"version", st->version},
                      {"pending_rows", st->pending_rows},
                      {"open_streams", t.first},
                      {"acks", t.second}});
  }
  return json{{"tables", std::move(tables)}, {"streams", std::move(streams)}};
}

}  // namespace arrow_zerobus::emulator
