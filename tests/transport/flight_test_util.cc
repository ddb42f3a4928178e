#include "flight_test_util.h"

#include <deque>
#include <numeric>

#include <arrow/ipc/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/proto_wire.h"

namespace arrow_zerobus::testing {

std::shared_ptr<arrow::Schema> FlightTestSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("name", arrow::large_utf8())});
}

std::shared_ptr<arrow::RecordBatch> FlightTestRows(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::LargeStringBuilder names;
  for (int64_t i = first; i < first + n; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    if (i % 7 == 3) {
      EXPECT_TRUE(names.AppendNull().ok());
    } else {
      EXPECT_TRUE(names.Append("row-" + std::to_string(i)).ok());
    }
  }
  return arrow::RecordBatch::Make(FlightTestSchema(), n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v(static_cast<size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytes(uint32_t field, std::string_view bytes, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

std::string ErrorInfoStatus(int code, const std::string& message, const std::string& reason,
                            const std::string& causes, const std::string& error_code) {
  std::string info;
  PutBytes(1, reason, &info);
  PutBytes(2, "zerobus.databricks.com", &info);
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"causes", causes},
                                   {"error_code", error_code}}) {
    std::string entry;
    PutBytes(1, key, &entry);
    PutBytes(2, value, &entry);
    PutBytes(3, entry, &info);
  }
  std::string any;
  PutBytes(1, "type.googleapis.com/google.rpc.ErrorInfo", &any);
  PutBytes(2, info, &any);
  std::string status;
  PutVarint((1 << 3) | 0, &status);
  PutVarint(static_cast<uint64_t>(code), &status);
  PutBytes(2, message, &status);
  PutBytes(3, any, &status);
  return status;
}

std::string FlattenBuffer(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!bb.Dump(&slices).ok()) return out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                            const std::string& json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return array.ok() ? *array : nullptr;
}

namespace {

std::shared_ptr<arrow::Buffer> Owned(std::string_view s) {
  return arrow::Buffer::FromString(std::string(s));
}

}  // namespace

DecodedFlightData DecodeFlightData(const std::string& bytes,
                                   const std::shared_ptr<arrow::Schema>& schema) {
  DecodedFlightData out;
  wire::Reader in(bytes);
  std::string_view header, body;
  while (!in.done()) {
    uint64_t key = 0;
    std::string_view value;
    if (!in.Tag(&key) || (key & 7) != 2 || !in.Bytes(&value)) {
      out.error = "not a FlightData message";
      return out;
    }
    switch (key >> 3) {
      case 1:
        out.has_descriptor = true;
        break;
      case 2:
        header = value;
        break;
      case 3:
        out.app_metadata = std::string(value);
        break;
      case 1000:
        body = value;
        break;
      default:
        break;
    }
  }
  auto message = arrow::ipc::Message::Open(Owned(header), Owned(body));
  if (!message.ok()) {
    out.error = message.status().ToString();
    return out;
  }
  arrow::ipc::DictionaryMemo memo;
  if ((*message)->type() == arrow::ipc::MessageType::SCHEMA) {
    auto s = arrow::ipc::ReadSchema(**message, &memo);
    if (s.ok()) out.schema = *s;
    else out.error = s.status().ToString();
  } else if (schema) {
    auto b = arrow::ipc::ReadRecordBatch(**message, schema, &memo,
                                         arrow::ipc::IpcReadOptions::Defaults());
    if (b.ok()) out.batch = *b;
    else out.error = b.status().ToString();
  } else {
    out.error = "a record batch before the schema";
  }
  return out;
}

struct ScriptedFlightServer::State : grpc::CallbackGenericService {
  Mode mode = Mode::kNormal;
  mutable std::mutex mu;
  std::vector<DoPut> calls;
  std::unique_ptr<grpc::Server> server;

  class Reactor : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(State* state, grpc::GenericCallbackServerContext* ctx) : state_(state) {
      {
        std::lock_guard<std::mutex> lk(state_->mu);
        index_ = state_->calls.size();
        DoPut call;
        call.method = ctx->method();
        for (const auto& [k, v] : ctx->client_metadata()) {
          call.metadata[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
        }
        state_->calls.push_back(std::move(call));
      }
      StartSendInitialMetadata();
      StartRead(&req_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        {
          std::lock_guard<std::mutex> lk(state_->mu);
          state_->calls[index_].half_closed = true;
        }
        End(grpc::Status::OK);
        return;
      }
      Handle(DecodeFlightData(FlattenBuffer(req_), schema_));
      StartRead(&req_);
    }
    void OnWriteDone(bool) override {
      std::unique_lock<std::mutex> lk(mu_);
      queue_.pop_front();
      writing_ = false;
      Pump(lk);
    }
    void OnSendInitialMetadataDone(bool) override {}
    void OnCancel() override { End(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    // First DoPut scripted by the mode; later ones behave (recovery succeeds).
    bool scripted() const { return index_ == 0 || state_->mode == Mode::kBadReady ||
                                   state_->mode == Mode::kGarbageReady ||
                                   state_->mode == Mode::kSchemaReject ||
                                   state_->mode == Mode::kEndDuringSetup ||
                                   state_->mode == Mode::kOverClaim; }

    void Ack(int64_t offset, int64_t records, const std::string& extra = "") {
      Send("{\"ack_up_to_offset\":" + std::to_string(offset) +
           ",\"ack_up_to_records\":" + std::to_string(records) + extra + "}");
    }

    void Handle(const DecodedFlightData& msg) {
      const Mode mode = scripted() ? state_->mode : Mode::kNormal;
      if (!schema_) {
        {
          std::lock_guard<std::mutex> lk(state_->mu);
          auto& call = state_->calls[index_];
          call.schema = msg.schema;
          call.schema_has_descriptor = msg.has_descriptor;
          call.schema_app_metadata = msg.app_metadata;
          if (!msg.error.empty()) call.decode_errors.push_back(msg.error);
        }
        schema_ = msg.schema;
        switch (mode) {
          case Mode::kSchemaReject:
            End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "Arrow Flight schema validation failed: field 'extra' is not in "
                             "the table",
                             ErrorInfoStatus(3, "schema validation failed",
                                             "SCHEMA_VALIDATION_FAILED",
                                             "FIELD_NOT_IN_TABLE,FIELD_COUNT_MISMATCH", "8001")));
            return;
          case Mode::kEndDuringSetup:
            End(grpc::Status::OK);
            return;
          case Mode::kBadReady:
            Ack(3, 0);
            return;
          case Mode::kGarbageReady:
            Send("nope");
            return;
          default:
            Ack(-1, 0);
            return;
        }
      }
      const int64_t n = msg.batch ? msg.batch->num_rows() : 0;
      {
        std::lock_guard<std::mutex> lk(state_->mu);
        auto& call = state_->calls[index_];
        call.pieces.push_back({msg.app_metadata, msg.batch});
        if (!msg.error.empty()) call.decode_errors.push_back(msg.error);
      }
      const int64_t offset = pieces_++;
      switch (mode) {
        case Mode::kPartialThenFail:
          Ack(offset, rows_ + n / 2);
          End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "scripted failure"));
          return;
        case Mode::kCloseSignal:
          rows_ += n;
          Ack(offset, rows_, offset == 0 ? ",\"close_stream_duration_ms\":300" : "");
          return;
        case Mode::kWithholdAcks:
          return;
        case Mode::kOverClaim:
          Ack(offset, rows_ + n + 5);
          return;
        default:
          rows_ += n;
          Ack(offset, rows_);
          return;
      }
    }
    void Send(std::string bytes) {
      std::string message;
      PutBytes(1, bytes, &message);  // PutResult.app_metadata
      std::unique_lock<std::mutex> lk(mu_);
      grpc::Slice slice(message);
      queue_.emplace_back(&slice, 1);
      Pump(lk);
    }
    void End(grpc::Status status) {
      std::unique_lock<std::mutex> lk(mu_);
      if (!finish_status_) finish_status_ = std::move(status);
      Pump(lk);
    }
    void Pump(std::unique_lock<std::mutex>& lk) {
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        writing_ = true;
        grpc::ByteBuffer* next = &queue_.front();
        lk.unlock();
        StartWrite(next);
        return;
      }
      if (finish_status_) {
        finished_ = true;
        grpc::Status st = *finish_status_;
        lk.unlock();
        Finish(st);
      }
    }
    State* state_;
    size_t index_ = 0;
    std::shared_ptr<arrow::Schema> schema_;
    int64_t pieces_ = 0;
    int64_t rows_ = 0;
    grpc::ByteBuffer req_;
    std::mutex mu_;
    std::deque<grpc::ByteBuffer> queue_;
    bool writing_ = false;
    std::optional<grpc::Status> finish_status_;
    bool finished_ = false;
  };

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Reactor(this, ctx);
  }
};

ScriptedFlightServer::ScriptedFlightServer(Mode mode) : state_(std::make_shared<State>()) {
  state_->mode = mode;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  builder.RegisterCallbackGenericService(state_.get());
  state_->server = builder.BuildAndStart();
}

ScriptedFlightServer::~ScriptedFlightServer() {
  state_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  state_->server->Wait();
}

std::vector<ScriptedFlightServer::DoPut> ScriptedFlightServer::calls() const {
  std::lock_guard<std::mutex> lk(state_->mu);
  return state_->calls;
}

std::vector<int64_t> ScriptedFlightServer::ReceivedIds() const {
  std::vector<int64_t> ids;
  for (const auto& call : calls()) {
    for (const auto& p : call.pieces) {
      if (!p.rows) continue;
      auto col = std::static_pointer_cast<arrow::Int64Array>(p.rows->column(0));
      for (int64_t i = 0; i < col->length(); ++i) ids.push_back(col->Value(i));
    }
  }
  return ids;
}

}  // namespace arrow_zerobus::testing
