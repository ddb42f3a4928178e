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

namespace arrow_zerobus::emulator {

namespace {

namespace zb = databricks::zerobus;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr const char* kTableHeader = "x-databricks-zerobus-table-name";

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

grpc::Status StatusFromArrow(const arrow::Status& st, const std::string& prefix = "") {
  return grpc::Status(static_cast<grpc::StatusCode>(ToStatusCode(st)), prefix + st.message());
}

}  // namespace

namespace {

// Minimal protobuf wire reading for the ingest fast path.
struct WireReader {
  const uint8_t* p;
  const uint8_t* end;

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t b = *p++;
      result |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  // A field key: protobuf refuses field number 0 and keys beyond 32 bits.
  bool Tag(uint64_t* tag) { return Varint(tag) && *tag <= UINT32_MAX && (*tag >> 3) != 0; }
  bool Bytes(std::string_view* out) {
    uint64_t len;
    if (!Varint(&len) || len > static_cast<uint64_t>(end - p)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    p += len;
    return true;
  }
  // Skips a field of an unknown number (groups are not expected here: fall back).
  bool Skip(uint32_t wire_type) {
    uint64_t v;
    std::string_view b;
    switch (wire_type) {
      case 0: return Varint(&v);
      case 1: if (end - p < 8) return false; p += 8; return true;
      case 2: return Bytes(&b);
      case 5: if (end - p < 4) return false; p += 4; return true;
      default: return false;
    }
  }
};

WireReader Reader(std::string_view s) {
  auto* b = reinterpret_cast<const uint8_t*>(s.data());
  return WireReader{b, b + s.size()};
}

// Records of a ProtoEncodedRecordBatch / JsonRecordBatch (both: repeated field 1).
bool ParseRecordList(std::string_view bytes, std::vector<std::string_view>* records) {
  WireReader r = Reader(bytes);
  while (r.p < r.end) {
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
  WireReader top = Reader(message);
  std::string_view payload;
  int payloads = 0;
  while (top.p < top.end) {
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
  WireReader r = Reader(payload);
  bool has_offset = false;
  int record_fields = 0;
  size_t first = records->size();
  while (r.p < r.end) {
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

// One EphemeralStream RPC. All state is guarded by mu_; gRPC Start*/Finish calls are decided
// under the lock and made after releasing it, because on non-gRPC threads (the committer, the
// timer) gRPC may run the completion callback inline, which takes the lock again.
//
// Lifetime: owned by self_ from construction until OnDone; durable-append and timer callbacks
// hold weak pointers, so a late callback after the RPC ended does nothing.
class StreamReactor final : public grpc::ServerGenericBidiReactor,
                            public std::enable_shared_from_this<StreamReactor> {
 public:
  StreamReactor(ZerobusService* service, const ServiceContext* svc,
                grpc::GenericCallbackServerContext* ctx)
      : service_(service), svc_(svc), ctx_(ctx) {}

  void Begin() {
    self_ = shared_from_this();
    service_->Register(self_);
    svc_->stats->StreamOpened();
    // Real clients wait for the server's initial metadata before they send anything.
    StartSendInitialMetadata();
    StartRead(&read_buffer_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close (client is done) or a broken/cancelled call.
      std::unique_lock<std::mutex> lock(mu_);
      read_closed_ = true;
      if (!created_) {
        RequestFinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "stream closed before create_stream"));
      } else {
        EvaluateAcksLocked();
      }
      Act(lock);
      return;
    }
    bool keep_reading = HandleRequest();
    read_buffer_.Clear();
    read_slice_ = grpc::Slice();
    std::unique_lock<std::mutex> lock(mu_);
    keep_reading = keep_reading && !finish_requested_;
    if (keep_reading && pending_bytes_ > svc_->max_pending_bytes_per_stream) {
      // Back-pressure: resume from OnDurable once the table has caught up.
      read_paused_ = true;
      keep_reading = false;
    }
    lock.unlock();
    if (keep_reading) StartRead(&read_buffer_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    write_in_flight_ = false;
    if (!ok) {
      // The client is gone: nothing more can be delivered.
      pending_writes_.clear();
      RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write to client failed"));
    }
    Act(lock);
  }

  void OnCancel() override {
    std::unique_lock<std::mutex> lock(mu_);
    pending_writes_.clear();
    RequestFinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
    Act(lock);
  }

  void OnDone() override {
    if (stats_) {
      std::lock_guard<std::mutex> lock(stats_->mu);
      stats_->final_code = static_cast<int>(finish_status_.error_code());
      stats_->final_message = finish_status_.error_message();
      stats_->open.store(false);
    }
    if (svc_->log) {
      // Messages never hold tokens or secrets (see auth.cc), so they can be logged.
      std::string line = stats_ ? "stream " + stats_->stream_id + " table=" + stats_->table +
                                      " requests=" + std::to_string(stats_->requests.load()) +
                                      " rows=" + std::to_string(stats_->rows.load()) + " ended"
                                : std::string("stream not created");
      line += " code=" + std::to_string(static_cast<int>(finish_status_.error_code()));
      if (!finish_status_.error_message().empty()) line += ": " + finish_status_.error_message();
      svc_->log(line);
    }
    svc_->stats->StreamClosed();
    service_->Unregister(this);
    // A durable callback may briefly hold the last reference to this reactor and destroy it on
    // the committer thread; it must not take the table (or decoder) down with it there.
    decoder_.reset();
    table_.reset();
    // Last statement: may destroy this.
    auto keep = std::move(self_);
  }

  // Re-evaluates acks (faults changed).
  void Kick() {
    std::unique_lock<std::mutex> lock(mu_);
    EvaluateAcksLocked();
    Act(lock);
  }

 private:
  struct PendingAck {
    int64_t offset;
    Clock::time_point not_before;  // quota pacing
    bool durable = false;
    Clock::time_point durable_at;
  };

  // ---- request dispatch -------------------------------------------------------------------

  bool HandleRequest() {
    // One contiguous view of the message: zero-copy when gRPC received it in one slice, else one
    // copy of the whole message (never one allocation per record).
    if (!read_buffer_.TrySingleSlice(&read_slice_).ok() &&
        !read_buffer_.DumpToSingleSlice(&read_slice_).ok()) {
      return Refuse(grpc::StatusCode::INTERNAL, "cannot read the request bytes");
    }
    std::string_view bytes(reinterpret_cast<const char*>(read_slice_.begin()), read_slice_.size());
    if (created_) {
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
    return created_ ? HandleIngestMessage(bytes.size()) : HandleCreate();
  }

  // ---- create_stream --------------------------------------------------------------------

  bool Refuse(grpc::StatusCode code, std::string message) {
    std::unique_lock<std::mutex> lock(mu_);
    RequestFinishLocked(grpc::Status(code, std::move(message)));
    Act(lock);
    return false;
  }

  bool HandleCreate() {
    if (request_.payload_case() != zb::EphemeralStreamRequest::kCreateStream) {
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                    "the first message of a stream must be create_stream");
    }
    const zb::CreateIngestStreamRequest& create = request_.create_stream();
    std::string authorization = MetadataValue(ctx_, "authorization");
    std::string header_table = MetadataValue(ctx_, kTableHeader);

    if (!svc_->no_auth) {
      AuthCheck check = svc_->tokens->CheckAnyToken(authorization);
      if (!check.ok()) return Refuse(static_cast<grpc::StatusCode>(check.code), check.message);
    }
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
    table_key_ = LowerAscii(table_name);
    if (!svc_->no_auth) {
      AuthCheck check = svc_->tokens->CheckStreamAccess(authorization, table_key_);
      if (!check.ok()) return Refuse(static_cast<grpc::StatusCode>(check.code), check.message);
    }
    if (svc_->faults->CreationBlocked(table_key_)) {
      return Refuse(grpc::StatusCode::UNAVAILABLE,
                    "6006 Pipeline creation is temporarily blocked for table '" + table_name +
                        "'; retry later");
    }

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

    auto stats = std::make_shared<StreamStats>();
    stats->stream_id = NewUuid();
    stats->table = table_->name();
    stats->record_type = json_ ? "JSON" : "PROTO";
    stats->opened_at = std::chrono::system_clock::now();
    svc_->stats->Add(stats);
    if (svc_->log) {
      svc_->log("stream " + stats->stream_id + " table=" + stats->table + " opened (" +
                stats->record_type + ")");
    }

    std::unique_lock<std::mutex> lock(mu_);
    stats_ = stats;  // under mu_: Act() reads it from other threads
    created_ = true;
    zb::EphemeralStreamResponse response;
    response.mutable_create_stream_response()->set_stream_id(stats->stream_id);
    pending_writes_.push_back(std::move(response));
    ApplyRequestFaultsLocked();
    Act(lock);
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
    int64_t rows = (*batch)->num_rows();
    {
      std::lock_guard<std::mutex> lock(mu_);
      RefreshFaultsLocked();
      PendingAck entry{offset, Clock::now(), false, {}};
      double cost_s = 0;
      if (faults_.max_records_per_s > 0) cost_s = std::max(cost_s, rows / faults_.max_records_per_s);
      if (faults_.max_bytes_per_s > 0) cost_s = std::max(cost_s, wire_bytes / faults_.max_bytes_per_s);
      if (cost_s > 0) {
        rate_cursor_ = std::max(rate_cursor_, entry.not_before) +
                       std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(cost_s));
        entry.not_before = rate_cursor_;
      }
      pending_acks_.push_back(entry);
      pending_bytes_ += wire_bytes;
      ++next_offset_;
    }
    stats_->requests.fetch_add(1, std::memory_order_relaxed);
    stats_->rows.fetch_add(rows, std::memory_order_relaxed);
    stats_->bytes.fetch_add(wire_bytes, std::memory_order_relaxed);

    // Outside the lock: the null sink runs the callback inline.
    std::weak_ptr<StreamReactor> weak = weak_from_this();
    table_->Append(std::move(*batch), wire_bytes, [weak, offset, wire_bytes](arrow::Status st) {
      if (auto self = weak.lock()) self->OnDurable(offset, wire_bytes, std::move(st));
    });

    std::unique_lock<std::mutex> lock(mu_);
    ApplyRequestFaultsLocked();
    bool go_on = !finish_requested_;
    Act(lock);
    return go_on;
  }

  void OnDurable(int64_t offset, int64_t wire_bytes, arrow::Status st) {
    std::unique_lock<std::mutex> lock(mu_);
    pending_bytes_ -= wire_bytes;
    bool resume = false;
    if (read_paused_ && !finish_requested_ &&
        pending_bytes_ <= svc_->max_pending_bytes_per_stream / 2) {
      read_paused_ = false;
      resume = true;
    }
    if (!st.ok()) {
      RequestFinishLocked(grpc::Status(grpc::StatusCode::INTERNAL,
                                       "offset " + std::to_string(offset) +
                                           ": table write failed: " + st.message()));
    } else {
      auto now = Clock::now();
      for (auto& p : pending_acks_) {
        if (p.offset > offset) break;
        if (!p.durable) {
          p.durable = true;
          p.durable_at = now;
        }
      }
      EvaluateAcksLocked();
    }
    Act(lock);
    if (resume) StartRead(&read_buffer_);
  }

  // ---- faults and acks (mu_ held) ---------------------------------------------------------

  void RefreshFaultsLocked() {
    uint64_t v = svc_->faults->version();
    if (v != faults_version_) {
      faults_ = svc_->faults->For(table_key_);
      faults_version_ = v;
    }
  }

  // Faults that fire on a request count: checked after create_stream (count 0) and after each
  // ingest request.
  void ApplyRequestFaultsLocked() {
    RefreshFaultsLocked();
    int64_t count = next_offset_;
    if (faults_.close_signal && !close_signal_sent_ &&
        count >= faults_.close_signal->after_requests &&
        svc_->faults->Claim(faults_.close_signal_rule)) {
      close_signal_sent_ = true;
      int64_t ms = faults_.close_signal->duration_ms;
      zb::EphemeralStreamResponse response;
      auto* d = response.mutable_close_stream_signal()->mutable_duration();
      d->set_seconds(ms / 1000);
      d->set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
      pending_writes_.push_back(std::move(response));
      stats_->close_signals.fetch_add(1, std::memory_order_relaxed);
      std::weak_ptr<StreamReactor> weak = weak_from_this();
      svc_->scheduler->At(Clock::now() + std::chrono::milliseconds(ms), [weak] {
        if (auto self = weak.lock()) self->EndAfterCloseSignal();
      });
    }
    if (faults_.end_stream && count >= faults_.end_stream->after_requests &&
        svc_->faults->Claim(faults_.end_stream_rule)) {
      RequestFinishLocked(grpc::Status(static_cast<grpc::StatusCode>(faults_.end_stream->code),
                                       faults_.end_stream->message));
    }
  }

  void EndAfterCloseSignal() {
    std::unique_lock<std::mutex> lock(mu_);
    RequestFinishLocked(grpc::Status::OK);
    Act(lock);
  }

  // Sends the highest ack whose rows are durable and whose delay/quota has passed; arms the
  // timer for the next one; finishes a half-closed stream once everything is acked.
  void EvaluateAcksLocked() {
    if (finish_requested_ || !created_) return;
    RefreshFaultsLocked();
    if (!faults_.withhold_acks) {
      auto now = Clock::now();
      auto delay = std::chrono::milliseconds(faults_.ack_delay_ms);
      int64_t best = -1;
      std::optional<Clock::time_point> next_release;
      while (!pending_acks_.empty() && pending_acks_.front().durable) {
        const PendingAck& p = pending_acks_.front();
        auto release = std::max(p.durable_at + delay, p.not_before);
        if (release > now) {
          next_release = release;
          break;
        }
        best = p.offset;
        pending_acks_.pop_front();
      }
      if (best > acked_up_to_) {
        acked_up_to_ = best;
        QueueAckLocked(best);
      }
      if (next_release && (!timer_armed_ || *next_release < timer_at_)) {
        timer_armed_ = true;
        timer_at_ = *next_release;
        std::weak_ptr<StreamReactor> weak = weak_from_this();
        svc_->scheduler->At(*next_release, [weak] {
          if (auto self = weak.lock()) self->OnTimer();
        });
      }
    }
    if (read_closed_ && (pending_acks_.empty() || faults_.withhold_acks)) {
      // The client half-closed: end the RPC once all it sent is acknowledged.
      RequestFinishLocked(grpc::Status::OK);
    }
  }

  void OnTimer() {
    std::unique_lock<std::mutex> lock(mu_);
    if (Clock::now() >= timer_at_) timer_armed_ = false;
    EvaluateAcksLocked();
    Act(lock);
  }

  void QueueAckLocked(int64_t offset) {
    // Acks are cumulative: a newer one replaces one still waiting to be written.
    if (!pending_writes_.empty() && pending_writes_.back().has_ingest_record_response()) {
      pending_writes_.back().mutable_ingest_record_response()->set_durability_ack_up_to_offset(
          offset);
      return;
    }
    zb::EphemeralStreamResponse response;
    response.mutable_ingest_record_response()->set_durability_ack_up_to_offset(offset);
    pending_writes_.push_back(std::move(response));
  }

  void RequestFinishLocked(grpc::Status status) {
    if (finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = std::move(status);
  }

  // Starts the next write, or Finish once no write is in flight. Releases the lock.
  void Act(std::unique_lock<std::mutex>& lock) {
    bool write = false, finish = false;
    if (!write_in_flight_ && !finished_) {
      if (!pending_writes_.empty()) {
        const zb::EphemeralStreamResponse& next = pending_writes_.front();
        std::string bytes = next.SerializeAsString();
        grpc::Slice slice(bytes);
        current_write_ = grpc::ByteBuffer(&slice, 1);
        write_in_flight_ = true;
        write = true;
        if (next.has_ingest_record_response() && stats_) {
          stats_->acks.fetch_add(1, std::memory_order_relaxed);
          stats_->last_ack_offset.store(
              next.ingest_record_response().durability_ack_up_to_offset(),
              std::memory_order_relaxed);
        }
        pending_writes_.pop_front();
      } else if (finish_requested_) {
        finished_ = true;
        finish = true;
      }
    }
    grpc::Status status = finish ? finish_status_ : grpc::Status::OK;
    lock.unlock();
    if (write) StartWrite(&current_write_);
    if (finish) Finish(status);
  }

  ZerobusService* service_;
  const ServiceContext* svc_;
  grpc::GenericCallbackServerContext* ctx_;
  std::shared_ptr<StreamReactor> self_;

  // Read path only (one read at a time), no lock needed.
  grpc::ByteBuffer read_buffer_;
  grpc::Slice read_slice_;
  zb::EphemeralStreamRequest request_;  // create_stream and unusual encodings
  std::vector<std::string_view> views_;
  std::unique_ptr<RecordDecoder> decoder_;
  std::shared_ptr<Table> table_;
  std::string table_key_;
  bool json_ = false;
  std::shared_ptr<StreamStats> stats_;

  std::mutex mu_;
  bool created_ = false;  // written under mu_, read without it on the read path
  int64_t next_offset_ = 0;
  std::deque<PendingAck> pending_acks_;
  int64_t acked_up_to_ = -1;
  Clock::time_point rate_cursor_{};
  StreamFaults faults_;
  uint64_t faults_version_ = 0;
  bool close_signal_sent_ = false;
  bool timer_armed_ = false;
  Clock::time_point timer_at_{};
  bool read_closed_ = false;
  int64_t pending_bytes_ = 0;  // appended, not yet durable
  bool read_paused_ = false;
  std::deque<zb::EphemeralStreamResponse> pending_writes_;
  grpc::ByteBuffer current_write_;
  bool write_in_flight_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

grpc::ServerGenericBidiReactor* ZerobusService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  if (context->method() != kEphemeralStreamMethod) {
    return grpc::CallbackGenericService::CreateReactor(context);  // UNIMPLEMENTED
  }
  auto reactor = std::make_shared<StreamReactor>(this, &context_, context);
  reactor->Begin();
  return reactor.get();
}

void ZerobusService::Register(const std::shared_ptr<StreamReactor>& reactor) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.push_back(reactor);
}

void ZerobusService::Unregister(const StreamReactor* reactor) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.remove_if([&](const std::weak_ptr<StreamReactor>& w) {
    auto p = w.lock();
    return !p || p.get() == reactor;
  });
}

void ZerobusService::KickAll() {
  std::vector<std::shared_ptr<StreamReactor>> streams;
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
