// Arrow Flight DoPut over real loopback gRPC, from a raw client that frames FlightData by hand
// from Arrow C++'s IPC payloads, as the vendor SDKs' encoder does: the ready signal, durable
// cumulative acks, rows read back from the Delta table, schema rejections with their ErrorInfo,
// offsets, decimal text, compression, auth and faults.
#include <thread>

#include <arrow/api.h>
#include <arrow/ipc/api.h>
#include <arrow/json/from_string.h>
#include <arrow/util/compression.h>
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/proto_wire.h"
#include "decode/table_schema.h"
#include "server/auth.h"
#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using google::protobuf::FieldDescriptorProto;

constexpr const char* kTable = "main.default.arrow_rows";
constexpr const char* kDoPut = "/arrow.flight.protocol.FlightService/DoPut";

// ---- a hand-framed Flight client ------------------------------------------------------------

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytes(std::string* out, uint32_t field, std::string_view bytes) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}

// FlightData{data_header, app_metadata, data_body} of an IPC payload; the body is the payload's
// buffers, each padded to 8 bytes (the layout the message's buffer offsets describe).
std::string FlightData(const arrow::ipc::IpcPayload& payload, std::string_view app_metadata) {
  std::string body;
  for (const auto& b : payload.body_buffers) {
    if (b) body.append(reinterpret_cast<const char*>(b->data()), static_cast<size_t>(b->size()));
    body.append((8 - body.size() % 8) % 8, '\0');
  }
  std::string out;
  PutBytes(&out, 2, std::string_view(reinterpret_cast<const char*>(payload.metadata->data()),
                                     static_cast<size_t>(payload.metadata->size())));
  if (!app_metadata.empty()) PutBytes(&out, 3, app_metadata);
  if (!body.empty()) PutBytes(&out, 1000, body);
  return out;
}

std::string SchemaMessage(const arrow::Schema& schema) {
  arrow::ipc::IpcPayload payload;
  arrow::ipc::DictionaryFieldMapper mapper(schema);
  auto st = arrow::ipc::GetSchemaPayload(schema, arrow::ipc::IpcWriteOptions::Defaults(), mapper,
                                         &payload);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return FlightData(payload, "");
}

std::string BatchMessage(const arrow::RecordBatch& batch, int64_t offset_id,
                         arrow::Compression::type codec = arrow::Compression::UNCOMPRESSED) {
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  if (codec != arrow::Compression::UNCOMPRESSED) {
    options.codec = arrow::util::Codec::Create(codec).ValueOrDie();
  }
  arrow::ipc::IpcPayload payload;
  auto st = arrow::ipc::GetRecordBatchPayload(batch, options, &payload);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return FlightData(payload, "{\"offset_id\":" + std::to_string(offset_id) + "}");
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// One DoPut with the sync API (ByteBuffer messages) and a deadline.
class FlightCall {
 public:
  FlightCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& bearer,
             const std::string& table) {
    if (!bearer.empty()) ctx_.AddMetadata("authorization", bearer);
    if (!table.empty()) ctx_.AddMetadata("x-databricks-zerobus-table-name", table);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stream_.reset(grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
        channel.get(),
        grpc::internal::RpcMethod(kDoPut, grpc::internal::RpcMethod::BIDI_STREAMING), &ctx_));
  }

  bool Write(const std::string& flight_data) { return stream_->Write(ToByteBuffer(flight_data)); }

  // The next PutResult's app_metadata as JSON; nullopt when the stream ended.
  std::optional<json> Read() {
    grpc::ByteBuffer buffer;
    if (!stream_->Read(&buffer)) return std::nullopt;
    grpc::Slice slice;
    EXPECT_TRUE(buffer.DumpToSingleSlice(&slice).ok());
    // PutResult { bytes app_metadata = 1; }: tag 0x0a, length, JSON.
    wire::Reader in(slice.begin(), slice.end());
    uint64_t tag = 0;
    std::string_view metadata;
    EXPECT_TRUE(in.Tag(&tag) && tag == 0x0a && in.Bytes(&metadata) && in.done());
    std::string text(metadata);
    raw_results_.push_back(text);
    return json::parse(text, nullptr, /*allow_exceptions=*/false);
  }

  // Reads results until ack_up_to_offset reaches `offset` (or the stream ends).
  std::vector<json> ReadAcksUntil(int64_t offset) {
    std::vector<json> acks;
    while (auto r = Read()) {
      acks.push_back(*r);
      if ((*r)["ack_up_to_offset"].get<int64_t>() >= offset) break;
    }
    return acks;
  }

  // Half-close, read what is left, return the final status.
  grpc::Status Close(std::vector<json>* rest = nullptr) {
    stream_->WritesDone();
    while (auto r = Read()) {
      if (rest) rest->push_back(*r);
    }
    return stream_->Finish();
  }
  // The server's final status without half-closing first.
  grpc::Status Finish(std::vector<json>* rest = nullptr) {
    while (auto r = Read()) {
      if (rest) rest->push_back(*r);
    }
    return stream_->Finish();
  }

  const std::vector<std::string>& raw_results() const { return raw_results_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream_;
  std::vector<std::string> raw_results_;
};

// google.rpc.Status / Any / ErrorInfo decoded with protobuf's DynamicMessage from descriptors
// written here (wire-compatible: details as bytes, ErrorInfo.metadata as repeated entries).
struct ErrorInfo {
  int code = 0;
  std::string message, type_url, reason, domain;
  std::map<std::string, std::string> metadata;
};

std::optional<ErrorInfo> DecodeStatusDetails(const std::string& details) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("rpc_status_test.proto");
  file.set_package("testrpc");
  auto add = [](google::protobuf::DescriptorProto* m, const char* name, int number,
                FieldDescriptorProto::Type type, FieldDescriptorProto::Label label =
                                                     FieldDescriptorProto::LABEL_OPTIONAL,
                const char* type_name = nullptr) {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(label);
    if (type_name) f->set_type_name(type_name);
  };
  auto* status = file.add_message_type();
  status->set_name("Status");
  add(status, "code", 1, FieldDescriptorProto::TYPE_INT32);
  add(status, "message", 2, FieldDescriptorProto::TYPE_STRING);
  add(status, "details", 3, FieldDescriptorProto::TYPE_MESSAGE,
      FieldDescriptorProto::LABEL_REPEATED, ".testrpc.Any");
  auto* any = file.add_message_type();
  any->set_name("Any");
  add(any, "type_url", 1, FieldDescriptorProto::TYPE_STRING);
  add(any, "value", 2, FieldDescriptorProto::TYPE_BYTES);
  auto* entry = file.add_message_type();
  entry->set_name("Entry");
  add(entry, "key", 1, FieldDescriptorProto::TYPE_STRING);
  add(entry, "value", 2, FieldDescriptorProto::TYPE_STRING);
  auto* info = file.add_message_type();
  info->set_name("ErrorInfo");
  add(info, "reason", 1, FieldDescriptorProto::TYPE_STRING);
  add(info, "domain", 2, FieldDescriptorProto::TYPE_STRING);
  add(info, "metadata", 3, FieldDescriptorProto::TYPE_MESSAGE,
      FieldDescriptorProto::LABEL_REPEATED, ".testrpc.Entry");
  google::protobuf::DescriptorPool pool;
  if (!pool.BuildFile(file)) return std::nullopt;
  google::protobuf::DynamicMessageFactory factory(&pool);
  auto parse = [&](const char* name, const std::string& bytes) {
    std::unique_ptr<google::protobuf::Message> m(
        factory.GetPrototype(pool.FindMessageTypeByName(std::string("testrpc.") + name))->New());
    return m->ParseFromString(bytes) ? std::move(m) : nullptr;
  };
  auto s = parse("Status", details);
  if (!s) return std::nullopt;
  const auto* r = s->GetReflection();
  const auto* d = s->GetDescriptor();
  ErrorInfo out;
  out.code = r->GetInt32(*s, d->FindFieldByName("code"));
  out.message = r->GetString(*s, d->FindFieldByName("message"));
  if (r->FieldSize(*s, d->FindFieldByName("details")) != 1) return std::nullopt;
  const auto& a = r->GetRepeatedMessage(*s, d->FindFieldByName("details"), 0);
  out.type_url = a.GetReflection()->GetString(a, a.GetDescriptor()->FindFieldByName("type_url"));
  auto e = parse("ErrorInfo",
                 a.GetReflection()->GetString(a, a.GetDescriptor()->FindFieldByName("value")));
  if (!e) return std::nullopt;
  const auto* er = e->GetReflection();
  const auto* ed = e->GetDescriptor();
  out.reason = er->GetString(*e, ed->FindFieldByName("reason"));
  out.domain = er->GetString(*e, ed->FindFieldByName("domain"));
  for (int i = 0; i < er->FieldSize(*e, ed->FindFieldByName("metadata")); ++i) {
    const auto& m = er->GetRepeatedMessage(*e, ed->FindFieldByName("metadata"), i);
    const auto* mr = m.GetReflection();
    out.metadata[mr->GetString(m, m.GetDescriptor()->FindFieldByName("key"))] =
        mr->GetString(m, m.GetDescriptor()->FindFieldByName("value"));
  }
  return out;
}

// ---- data -----------------------------------------------------------------------------------

std::shared_ptr<arrow::Schema> RowsSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("name", arrow::large_utf8()),
                        arrow::field("value", arrow::float64())});
}

// Rows [first, first + n): id, name "r<id>" (NULL when id % 4 == 0), value id / 2.
std::shared_ptr<arrow::RecordBatch> Rows(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::LargeStringBuilder names;
  arrow::DoubleBuilder values;
  for (int64_t i = first; i < first + n; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    EXPECT_TRUE((i % 4 == 0 ? names.AppendNull() : names.Append("r" + std::to_string(i))).ok());
    EXPECT_TRUE(values.Append(i / 2.0).ok());
  }
  return arrow::RecordBatch::Make(RowsSchema(), n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                   values.Finish().ValueOrDie()});
}

std::shared_ptr<arrow::RecordBatch> FromJson(const std::shared_ptr<arrow::Schema>& schema,
                                             const std::string& rows_json) {
  auto rows = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), rows_json);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (!rows.ok()) return nullptr;
  auto batch = arrow::RecordBatch::FromStructArray(*rows);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  return batch.ok() ? *batch : nullptr;
}

class FlightTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(TestOptions(dir_.path())); }

  void Start(EmulatorOptions options) {
    if (emulator_) {
      ASSERT_TRUE(emulator_->Shutdown().ok());
    }
    emulator_ = std::make_unique<Emulator>(std::move(options));
    auto st = emulator_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(emulator_->grpc_port()),
                                         grpc::InsecureChannelCredentials(), args);
  }

  // A strict emulator with `table` declared from a declaration JSON.
  void StartDeclared(const std::string& table, const std::string& declaration) {
    auto schema = SchemaFromDeclaration(declaration);
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    auto options = TestOptions(dir_.path());
    options.strict = true;
    options.tables.push_back({table, *schema});
    Start(options);
  }

  std::unique_ptr<FlightCall> Open(const std::string& table = kTable) {
    return std::make_unique<FlightCall>(channel_, BearerFor(*emulator_, table), table);
  }

  // Opens a DoPut, sends the schema and expects the ready signal.
  std::unique_ptr<FlightCall> OpenReady(const arrow::Schema& schema,
                                        const std::string& table = kTable) {
    auto call = Open(table);
    EXPECT_TRUE(call->Write(SchemaMessage(schema)));
    auto ready = call->Read();
    EXPECT_TRUE(ready.has_value());
    if (ready) {
      EXPECT_EQ(*ready, json({{"ack_up_to_offset", -1}, {"ack_up_to_records", 0}}));
    }
    return call;
  }

  // Sends the schema and returns the status the DoPut ends with (OK if it answered ready).
  grpc::Status SchemaStatus(const arrow::Schema& schema, const std::string& table = kTable) {
    auto call = Open(table);
    call->Write(SchemaMessage(schema));
    if (auto r = call->Read()) return grpc::Status::OK;
    return call->Finish();
  }

  void Fault(const std::string& body) {
    auto r = HttpPost(*emulator_, "/admin/faults", body, "application/json");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  std::shared_ptr<arrow::RecordBatch> ReadBack(const std::string& table = kTable) {
    auto path = emulator_->store().TablePath(table);
    EXPECT_TRUE(path.ok()) << path.status().ToString();
    if (!path.ok()) return nullptr;
    auto t = ReadDeltaTable(*path);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? (*t)->CombineChunksToBatch().ValueOrDie() : nullptr;
  }

  // Waits (up to 10 s) until `rows` rows of kTable are durable.
  void WaitDurableRows(int64_t rows) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      auto st = emulator_->store().Stats(kTable);
      if (st.ok() && st->rows >= rows) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "rows did not become durable";
  }

  TempDir dir_;
  std::unique_ptr<Emulator> emulator_;
  std::shared_ptr<grpc::Channel> channel_;
};

// ---- the basic path -----------------------------------------------------------------------

TEST_F(FlightTest, SchemaReadyBatchesDurableAcksRowsInDeltaTable) {
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 2), 0)));
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(2, 3), 1)));
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(5, 1), 2)));
  auto acks = call->ReadAcksUntil(2);
  ASSERT_FALSE(acks.empty());
  // Cumulative in messages and rows, never going back, consistent with each other.
  const int64_t rows_through[] = {2, 5, 6};
  int64_t last_offset = -1;
  for (const auto& a : acks) {
    int64_t offset = a["ack_up_to_offset"], records = a["ack_up_to_records"];
    EXPECT_GT(offset, last_offset);
    ASSERT_LE(offset, 2);
    EXPECT_EQ(records, rows_through[offset]);
    last_offset = offset;
  }
  EXPECT_EQ(acks.back(), json({{"ack_up_to_offset", 2}, {"ack_up_to_records", 6}}));
  // Acknowledged means durable: the rows are in the Delta table before the stream ends.
  auto before_close = ReadBack();
  ASSERT_NE(before_close, nullptr);
  EXPECT_EQ(before_close->num_rows(), 6);
  // Compact JSON, as the vendor clients' serde parser is given by the real service.
  EXPECT_EQ(call->raw_results().front(), R"({"ack_up_to_offset":-1,"ack_up_to_records":0})");
  grpc::Status st = call->Close();
  EXPECT_TRUE(st.ok()) << st.error_message();

  auto rows = ReadBack();
  ASSERT_NE(rows, nullptr);
  ASSERT_EQ(rows->num_rows(), 6);
  // The table was created from the Flight schema in table types.
  EXPECT_TRUE(rows->schema()->field(1)->type()->Equals(arrow::utf8()));
  EXPECT_FALSE(rows->schema()->field(0)->nullable());
  auto ids = std::static_pointer_cast<arrow::Int64Array>(rows->column(0));
  auto names = std::static_pointer_cast<arrow::StringArray>(rows->column(1));
  auto values = std::static_pointer_cast<arrow::DoubleArray>(rows->column(2));
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(ids->Value(i), i);
    if (i % 4 == 0) {
      EXPECT_TRUE(names->IsNull(i));
    } else {
      EXPECT_EQ(names->GetString(i), "r" + std::to_string(i));
    }
    EXPECT_DOUBLE_EQ(values->Value(i), i / 2.0);
  }

  ASSERT_TRUE(WaitForStreamsEnded(*emulator_));
  auto stats = emulator_->Stats();
  ASSERT_EQ(stats["streams"].size(), 1u);
  const auto& s = stats["streams"][0];
  EXPECT_EQ(s["record_type"], "arrow");
  EXPECT_EQ(s["requests"], 3);
  EXPECT_EQ(s["rows"], 6);
  EXPECT_EQ(s["last_ack_offset"], 2);
  EXPECT_EQ(s["status_code"], 0);
}

TEST_F(FlightTest, OffsetsAndRowsRestartOnEveryDoPut) {
  for (int round = 0; round < 2; ++round) {
    auto call = OpenReady(*RowsSchema());
    ASSERT_TRUE(call->Write(BatchMessage(*Rows(round * 10, 4), 0)));
    auto acks = call->ReadAcksUntil(0);
    ASSERT_FALSE(acks.empty());
    EXPECT_EQ(acks.back(), json({{"ack_up_to_offset", 0}, {"ack_up_to_records", 4}}));
    EXPECT_TRUE(call->Close().ok());
  }
  EXPECT_EQ(ReadBack()->num_rows(), 8);
}

TEST_F(FlightTest, ClosedWithoutDataEndsOk) {
  auto call = OpenReady(*RowsSchema());
  std::vector<json> rest;
  grpc::Status st = call->Close(&rest);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(rest.empty());
}

TEST_F(FlightTest, DeclaredTableOfEveryTypeFromCanonicalArrowTypes) {
  StartDeclared(kTable, R"j({"columns": [
      {"name": "id", "type": "bigint", "nullable": false},
      {"name": "i", "type": "int"}, {"name": "s", "type": "smallint"},
      {"name": "t", "type": "tinyint"}, {"name": "f", "type": "float"},
      {"name": "b", "type": "boolean"}, {"name": "bin", "type": "binary"},
      {"name": "price", "type": "decimal(10,2)"}, {"name": "d", "type": "date"},
      {"name": "ts", "type": "timestamp"}, {"name": "ntz", "type": "timestamp_ntz"},
      {"name": "tags", "type": "array<string>"}, {"name": "attrs", "type": "map<string,bigint>"},
      {"name": "pt", "type": "struct<x:int,label:string>"}]})j");
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("i", arrow::int32()),
       arrow::field("s", arrow::int16()), arrow::field("t", arrow::int8()),
       arrow::field("f", arrow::float32()), arrow::field("b", arrow::boolean()),
       arrow::field("bin", arrow::large_binary()), arrow::field("price", arrow::large_utf8()),
       arrow::field("d", arrow::date32()),
       arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
       arrow::field("ntz", arrow::timestamp(arrow::TimeUnit::MICRO)),
       arrow::field("tags", arrow::list(arrow::large_utf8())),
       arrow::field("attrs", std::make_shared<arrow::MapType>(
                                 arrow::field("keys", arrow::large_utf8(), false),
                                 arrow::field("values", arrow::int64()))),
       arrow::field("pt", arrow::struct_({arrow::field("x", arrow::int32()),
                                          arrow::field("label", arrow::large_utf8())}))});
  auto batch = FromJson(schema, R"([
      {"id": 1, "i": -7, "s": 300, "t": -8, "f": 1.5, "b": true, "bin": "AB", "price": "12.34",
       "d": 19000, "ts": 1700000000000000, "ntz": 5, "tags": ["a", null, "c"],
       "attrs": [["k", 1], ["z", null]], "pt": {"x": 3, "label": "p"}},
      {"id": 2, "i": null, "s": null, "t": null, "f": null, "b": null, "bin": null,
       "price": "-0.5", "d": null, "ts": null, "ntz": null, "tags": [], "attrs": [],
       "pt": null}])");
  ASSERT_NE(batch, nullptr);
  auto call = OpenReady(*schema);
  ASSERT_TRUE(call->Write(BatchMessage(*batch, 0)));
  EXPECT_EQ(call->ReadAcksUntil(0).back()["ack_up_to_records"], 2);
  EXPECT_TRUE(call->Close().ok());

  auto rows = ReadBack();
  ASSERT_NE(rows, nullptr);
  ASSERT_EQ(rows->num_rows(), 2);
  auto expected_schema = emulator_->store().GetSchema(kTable).ValueOrDie();
  auto expected = FromJson(expected_schema, R"([
      {"id": 1, "i": -7, "s": 300, "t": -8, "f": 1.5, "b": true, "bin": "AB", "price": "12.34",
       "d": 19000, "ts": 1700000000000000, "ntz": 5, "tags": ["a", null, "c"],
       "attrs": [["k", 1], ["z", null]], "pt": {"x": 3, "label": "p"}},
      {"id": 2, "i": null, "s": null, "t": null, "f": null, "b": null, "bin": null,
       "price": "-0.50", "d": null, "ts": null, "ntz": null, "tags": [], "attrs": [],
       "pt": null}])");
  ASSERT_NE(expected, nullptr);
  ASSERT_EQ(rows->num_columns(), expected->num_columns());
  for (int c = 0; c < rows->num_columns(); ++c) {
    SCOPED_TRACE(expected_schema->field(c)->name());
    // Equals ignores child values under a NULL struct (the JSON reader makes them 0/"", Parquet
    // NULL); the printed values compare the rest whatever the nested field names.
    const auto& got = rows->column(c);
    const auto& want = expected->column(c);
    EXPECT_TRUE(got->Equals(*want) || got->ToString() == want->ToString())
        << got->ToString() << "\nexpected:\n" << want->ToString();
  }
}

TEST_F(FlightTest, LeftOutNullableColumnsStoreNull) {
  StartDeclared(kTable, R"j({"columns": [{"name": "id", "type": "bigint", "nullable": false},
      {"name": "name", "type": "string"}, {"name": "value", "type": "double"}]})j");
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("value", arrow::float64())});
  auto call = OpenReady(*schema);
  ASSERT_TRUE(call->Write(BatchMessage(*FromJson(schema, R"([{"id": 1, "value": 2.5}])"), 0)));
  EXPECT_EQ(call->ReadAcksUntil(0).back()["ack_up_to_records"], 1);
  EXPECT_TRUE(call->Close().ok());
  auto rows = ReadBack();
  ASSERT_NE(rows, nullptr);
  ASSERT_EQ(rows->num_rows(), 1);
  EXPECT_TRUE(rows->GetColumnByName("name")->IsNull(0));
  EXPECT_DOUBLE_EQ(std::static_pointer_cast<arrow::DoubleArray>(rows->GetColumnByName("value"))
                       ->Value(0),
                   2.5);
}

TEST_F(FlightTest, CompressedBodiesLz4AndZstd) {
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 500), 0, arrow::Compression::LZ4_FRAME)));
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(500, 500), 1, arrow::Compression::ZSTD)));
  EXPECT_EQ(call->ReadAcksUntil(1).back()["ack_up_to_records"], 1000);
  EXPECT_TRUE(call->Close().ok());
  auto rows = ReadBack();
  ASSERT_NE(rows, nullptr);
  ASSERT_EQ(rows->num_rows(), 1000);
  auto names = std::static_pointer_cast<arrow::StringArray>(rows->column(1));
  EXPECT_EQ(names->GetString(999), "r999");
  EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(rows->column(0))->Value(777), 777);
}

TEST_F(FlightTest, MessagesAboveTheProtobufLimitUpTo16MiBAreAccepted) {
  // ~12 MiB in one FlightData: above the 10 MiB protobuf limit, below Flight's 16 MiB.
  const int64_t n = 12 * 1024;
  arrow::Int64Builder ids;
  arrow::LargeStringBuilder names;
  arrow::DoubleBuilder values;
  std::string big(1024, 'x');
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(ids.Append(i).ok());
    ASSERT_TRUE(names.Append(big).ok());
    ASSERT_TRUE(values.Append(i).ok());
  }
  auto batch = arrow::RecordBatch::Make(RowsSchema(), n,
                                        {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                         values.Finish().ValueOrDie()});
  std::string message = BatchMessage(*batch, 0);
  ASSERT_GT(message.size(), 12u << 20);
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(message));
  EXPECT_EQ(call->ReadAcksUntil(0).back()["ack_up_to_records"], n);
  EXPECT_TRUE(call->Close().ok());
  EXPECT_EQ(ReadBack()->num_rows(), n);
}

TEST_F(FlightTest, DescriptorOnTheFirstMessageIsIgnored) {
  // Arrow C++'s FlightClient::DoPut always sends a descriptor; the header names the table.
  auto call = Open();
  std::string descriptor;  // FlightDescriptor{type PATH, path ["elsewhere"]}
  PutVarint(&descriptor, (1 << 3) | 0);
  PutVarint(&descriptor, 1);
  PutBytes(&descriptor, 3, "elsewhere");
  std::string first;
  PutBytes(&first, 1, descriptor);
  ASSERT_TRUE(call->Write(first + SchemaMessage(*RowsSchema())));
  auto ready = call->Read();
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ((*ready)["ack_up_to_offset"], -1);
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 2), 0)));
  EXPECT_EQ(call->ReadAcksUntil(0).back()["ack_up_to_records"], 2);
  EXPECT_TRUE(call->Close().ok());
  EXPECT_EQ(ReadBack()->num_rows(), 2);
}

// ---- refusals -------------------------------------------------------------------------------

TEST_F(FlightTest, OffsetGapIsRejected) {
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 1), 0)));
  call->Write(BatchMessage(*Rows(1, 1), 2));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "Non-incremental offset: expected 1, actual 2");
}

TEST_F(FlightTest, DataMessageWithoutOffsetMetadataIsRejected) {
  auto call = OpenReady(*RowsSchema());
  arrow::ipc::IpcPayload payload;
  ASSERT_TRUE(arrow::ipc::GetRecordBatchPayload(*Rows(0, 1), arrow::ipc::IpcWriteOptions::Defaults(),
                                                &payload)
                  .ok());
  call->Write(FlightData(payload, "{\"offset\":0}"));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr(R"(app_metadata must be {"offset_id":N})"));
}

TEST_F(FlightTest, MessageAbove16MiBIsRejectedNamingItsSize) {
  const int64_t n = 17;
  arrow::Int64Builder ids;
  arrow::LargeStringBuilder names;
  arrow::DoubleBuilder values;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(ids.Append(i).ok());
    ASSERT_TRUE(names.Append(std::string(1 << 20, 'y')).ok());
    ASSERT_TRUE(values.Append(i).ok());
  }
  auto batch = arrow::RecordBatch::Make(RowsSchema(), n,
                                        {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                         values.Finish().ValueOrDie()});
  auto call = OpenReady(*RowsSchema());
  call->Write(BatchMessage(*batch, 0));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("the limit is 16777216 bytes per message"));
}

TEST_F(FlightTest, DictionaryEncodedFieldIsIncompatible) {
  StartDeclared(kTable, R"j({"columns": [{"name": "id", "type": "bigint", "nullable": false},
      {"name": "name", "type": "string"}]})j");
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("name", arrow::dictionary(arrow::int32(),
                                                                      arrow::large_utf8()))});
  grpc::Status st = SchemaStatus(*schema);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("field 'name' has type dictionary"));
  auto info = DecodeStatusDetails(st.error_details());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata["causes"], "TYPE_INCOMPATIBLE");
}

TEST_F(FlightTest, FirstMessageMustBeTheSchema) {
  auto call = Open();
  call->Write(BatchMessage(*Rows(0, 1), 0));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("must carry the Arrow schema"));
}

TEST_F(FlightTest, BadDecimalTextNamesColumnAndRow) {
  StartDeclared(kTable, R"j({"columns": [{"name": "id", "type": "bigint", "nullable": false},
      {"name": "price", "type": "decimal(6,2)"}]})j");
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int64(), false), arrow::field("price", arrow::large_utf8())});
  auto call = OpenReady(*schema);
  ASSERT_TRUE(call->Write(BatchMessage(*FromJson(schema, R"([{"id": 1, "price": "1.00"}])"), 0)));
  ASSERT_EQ(call->ReadAcksUntil(0).back()["ack_up_to_records"], 1);
  call->Write(BatchMessage(
      *FromJson(schema, R"([{"id": 2, "price": "2"}, {"id": 3, "price": "12x"}])"), 1));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("offset_id 1: column 'price' row 1"));
  EXPECT_THAT(st.error_message(), HasSubstr("'12x' is not decimal text"));
  // Nothing of the refused message is stored.
  EXPECT_EQ(ReadBack()->num_rows(), 1);
}

TEST_F(FlightTest, NullInNotNullColumnNamesColumnAndRow) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false)});
  auto call = OpenReady(*schema);
  // The field is declared non-nullable but the data carries a NULL in row 2.
  auto ids = arrow::json::ArrayFromJSONString(arrow::int64(), "[1, 2, null]").ValueOrDie();
  auto batch = arrow::RecordBatch::Make(schema, 3, {ids});
  call->Write(BatchMessage(*batch, 0));
  grpc::Status st = call->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("column 'id' row 2: NULL in a NOT NULL column"));
}

struct MismatchCase {
  const char* name;
  std::shared_ptr<arrow::Schema> schema;
  const char* causes;
  std::vector<const char*> message_parts;
};

TEST_F(FlightTest, SchemaMismatchIsRejectedWithErrorInfoCauses) {
  StartDeclared(kTable, R"j({"columns": [{"name": "id", "type": "bigint", "nullable": false},
      {"name": "name", "type": "string"}, {"name": "value", "type": "double"}]})j");
  auto id = arrow::field("id", arrow::int64(), false);
  auto name = arrow::field("name", arrow::large_utf8());
  auto value = arrow::field("value", arrow::float64());
  std::vector<MismatchCase> cases = {
      {"extra field", arrow::schema({id, name, value, arrow::field("x", arrow::int32())}),
       "FIELD_COUNT_MISMATCH,FIELD_NOT_IN_TABLE",
       {"4 fields but the table has 3 columns", "field 'x' is not a column of the table"}},
      {"unknown field", arrow::schema({id, arrow::field("nam", arrow::large_utf8())}),
       "FIELD_NOT_IN_TABLE", {"field 'nam' is not a column of the table"}},
      {"missing required", arrow::schema({name, value}), "MISSING_REQUIRED_COLUMN",
       {"NOT NULL column 'id' (bigint) has no field"}},
      {"out of order", arrow::schema({id, value, name}), "FIELD_OUT_OF_ORDER",
       {"field 'name' comes after 'value'"}},
      {"utf8 for string", arrow::schema({id, arrow::field("name", arrow::utf8()), value}),
       "TYPE_INCOMPATIBLE",
       {"field 'name' has type string; column 'name' (string) needs large_string"}},
      {"wrong width", arrow::schema({arrow::field("id", arrow::int32(), false), name, value}),
       "TYPE_INCOMPATIBLE", {"column 'id' (bigint) needs int64"}},
      {"nullable for NOT NULL", arrow::schema({arrow::field("id", arrow::int64()), name, value}),
       "TYPE_INCOMPATIBLE", {"field 'id' is nullable but column 'id' is NOT NULL"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto call = Open();
    call->Write(SchemaMessage(*c.schema));
    EXPECT_FALSE(call->Read().has_value());  // no ready signal
    grpc::Status st = call->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(),
                HasSubstr("Arrow Flight schema validation failed for table 'main.default.arrow_rows'"));
    for (const char* part : c.message_parts) EXPECT_THAT(st.error_message(), HasSubstr(part));
    auto info = DecodeStatusDetails(st.error_details());
    ASSERT_TRUE(info.has_value()) << "grpc-status-details-bin is not a google.rpc.Status";
    EXPECT_EQ(info->code, 3);
    EXPECT_EQ(info->message, st.error_message());
    EXPECT_EQ(info->type_url, "type.googleapis.com/google.rpc.ErrorInfo");
    EXPECT_EQ(info->reason, "SCHEMA_VALIDATION_FAILED");
    EXPECT_EQ(info->domain, "zerobus.databricks.com");
    EXPECT_EQ(info->metadata["causes"], c.causes);
    EXPECT_EQ(info->metadata["error_code"], "8001");
  }
  // Nothing was written; no stream was opened.
  EXPECT_EQ(emulator_->store().Stats(kTable)->rows, 0);
  EXPECT_EQ(emulator_->Stats()["streams"].size(), 0u);
}

TEST_F(FlightTest, NewTableNeedsTheCanonicalSchema) {
  // Not strict: an unknown table is created from a canonical schema only.
  auto utf8 = arrow::schema({arrow::field("id", arrow::int64(), false),
                             arrow::field("name", arrow::utf8())});
  grpc::Status st = SchemaStatus(*utf8, "main.default.fresh");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("needs large_string"));
  EXPECT_FALSE(emulator_->store().GetSchema("main.default.fresh").ok());
  // A schema the table cannot hold at all.
  auto u32 = arrow::schema({arrow::field("n", arrow::uint32())});
  st = SchemaStatus(*u32, "main.default.fresh");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("column 'n'"));
}

TEST_F(FlightTest, AuthAndTableRefusalsAsOnTheProtobufStream) {
  auto schema = RowsSchema();
  {
    FlightCall call(channel_, "", kTable);
    call.Write(SchemaMessage(*schema));
    EXPECT_EQ(call.Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    FlightCall call(channel_, BearerFor(*emulator_, "main.default.other"), kTable);
    call.Write(SchemaMessage(*schema));
    EXPECT_EQ(call.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    FlightCall call(channel_, BearerFor(*emulator_, kTable), "");
    call.Write(SchemaMessage(*schema));
    grpc::Status st = call.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("x-databricks-zerobus-table-name"));
  }
  {
    std::string bearer = BearerFor(*emulator_, kTable);
    emulator_->tokens().RevokeAll();
    FlightCall call(channel_, bearer, kTable);
    call.Write(SchemaMessage(*schema));
    EXPECT_EQ(call.Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // Strict: an undeclared table is NOT_FOUND.
  auto options = TestOptions(dir_.path());
  options.strict = true;
  Start(options);
  EXPECT_EQ(SchemaStatus(*schema).error_code(), grpc::StatusCode::NOT_FOUND);
  // no_auth: no token needed.
  options = TestOptions(dir_.path());
  options.no_auth = true;
  Start(options);
  FlightCall call(channel_, "", kTable);
  call.Write(SchemaMessage(*schema));
  EXPECT_TRUE(call.Read().has_value());
  EXPECT_TRUE(call.Close().ok());
}

// ---- faults ---------------------------------------------------------------------------------

TEST_F(FlightTest, EndStreamFaultAfterNDataMessages) {
  Fault(R"({"end_stream": {"after_requests": 2, "code": "UNAVAILABLE",
            "message": "6002 Stream timeout reached"}, "times": 1})");
  auto call = OpenReady(*RowsSchema());
  for (int i = 0; i < 4; ++i) call->Write(BatchMessage(*Rows(i * 3, 3), i));
  std::vector<json> acks;
  grpc::Status st = call->Finish(&acks);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "6002 Stream timeout reached");
  // Never more than was received and made durable.
  for (const auto& a : acks) EXPECT_LE(a["ack_up_to_records"].get<int64_t>(), 6);
  EXPECT_EQ(emulator_->Stats()["streams"][0]["requests"], 2);

  // times = 1: the next DoPut is served.
  auto next = OpenReady(*RowsSchema());
  ASSERT_TRUE(next->Write(BatchMessage(*Rows(100, 2), 0)));
  EXPECT_EQ(next->ReadAcksUntil(0).back()["ack_up_to_records"], 2);
  EXPECT_TRUE(next->Close().ok());
}

TEST_F(FlightTest, PartialAckFaultAcksPartOfAMessageThenEndsUnavailable) {
  Fault(R"({"partial_ack": {"after_messages": 2, "rows": 3}, "times": 1})");
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 4), 0)));
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(4, 10), 1)));
  call->Write(BatchMessage(*Rows(14, 5), 2));  // not read: the stream ends after message 1
  std::vector<json> acks;
  grpc::Status st = call->Finish(&acks);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("offset 1 acknowledged up to 3 of its 10 rows"));
  // The last ack claims message 0 whole and 3 rows of message 1; its offset stays at the last
  // whole message. No ack claims more.
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), json({{"ack_up_to_offset", 0}, {"ack_up_to_records", 7}}));
  for (const auto& a : acks) EXPECT_LE(a["ack_up_to_records"].get<int64_t>(), 7);
  // Both messages are durable whole (more than the ack claims), the third was never read.
  EXPECT_EQ(ReadBack()->num_rows(), 14);
  EXPECT_EQ(emulator_->Stats()["streams"][0]["requests"], 2);

  // times = 1: the next DoPut is acknowledged whole.
  auto next = OpenReady(*RowsSchema());
  ASSERT_TRUE(next->Write(BatchMessage(*Rows(100, 2), 0)));
  ASSERT_TRUE(next->Write(BatchMessage(*Rows(102, 6), 1)));
  EXPECT_EQ(next->ReadAcksUntil(1).back()["ack_up_to_records"], 8);
  EXPECT_TRUE(next->Close().ok());
}

TEST_F(FlightTest, PartialAckFaultByFractionOnTheFirstMessage) {
  Fault(R"({"partial_ack": {"after_messages": 1, "fraction": 0.5}})");
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 9), 0)));
  std::vector<json> acks;
  EXPECT_EQ(call->Finish(&acks).error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0], json({{"ack_up_to_offset", -1}, {"ack_up_to_records", 4}}));
  EXPECT_EQ(ReadBack()->num_rows(), 9);
}

TEST_F(FlightTest, PartialAckFaultRuleIsValidated) {
  for (const char* body : {R"({"partial_ack": {"after_messages": 1}})",
                           R"({"partial_ack": {"rows": 1, "fraction": 0.5}})",
                           R"({"partial_ack": {"fraction": 1.5}})",
                           R"({"partial_ack": {"after_messages": 0, "rows": 1}})",
                           R"({"partial_ack": {"rows": -1}})",
                           R"({"partial_ack": {"row": 1}})"}) {
    auto r = HttpPost(*emulator_, "/admin/faults", body, "application/json");
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_THAT(r.body, HasSubstr("partial_ack")) << body;
  }
  auto r = HttpPost(*emulator_, "/admin/faults", R"({"partial_ack": {"rows": 2}})",
                    "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  auto rules = HttpGet(*emulator_, "/admin/faults");
  EXPECT_THAT(rules.body, HasSubstr(R"("partial_ack":{"after_messages":1,"rows":2})"));
}

TEST_F(FlightTest, WithheldAcksAreSentOnceReleased) {
  Fault(R"({"withhold_acks": true})");
  auto call = OpenReady(*RowsSchema());
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 5), 0)));
  // Durable but not acknowledged while the fault holds.
  WaitDurableRows(5);
  EXPECT_EQ(ReadBack()->num_rows(), 5);
  auto r = HttpDelete(*emulator_, "/admin/faults");
  ASSERT_EQ(r.status, 200) << r.body;
  auto acks = call->ReadAcksUntil(0);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0], json({{"ack_up_to_offset", 0}, {"ack_up_to_records", 5}}));
  EXPECT_TRUE(call->Close().ok());
}

TEST_F(FlightTest, AckDelayHoldsAcksBack) {
  Fault(R"({"ack_delay_ms": 300})");
  auto call = OpenReady(*RowsSchema());
  auto t0 = Clock::now();
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 1), 0)));
  auto acks = call->ReadAcksUntil(0);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(300));
  EXPECT_EQ(acks.back()["ack_up_to_records"], 1);
  EXPECT_TRUE(call->Close().ok());
}

TEST_F(FlightTest, CloseSignalIsAPutResultThenTheServerEndsAfterTheDuration) {
  Fault(R"({"close_signal": {"after_requests": 2, "duration_ms": 400}, "times": 1})");
  auto call = OpenReady(*RowsSchema());
  auto t0 = Clock::now();
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 2), 0)));
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(2, 2), 1)));
  std::optional<json> signal;
  std::vector<json> acks;
  while (auto r = call->Read()) {
    if (r->contains("close_stream_duration_ms")) {
      signal = *r;
      // Still served after the signal: a message sent now is stored and acknowledged.
      EXPECT_TRUE(call->Write(BatchMessage(*Rows(4, 1), 2)));
    } else {
      acks.push_back(*r);
    }
  }
  grpc::Status st = call->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(400));
  ASSERT_TRUE(signal.has_value());
  EXPECT_EQ((*signal)["close_stream_duration_ms"], 400);
  // The signal carries the watermark at that moment, never more than was received.
  EXPECT_LE((*signal)["ack_up_to_records"].get<int64_t>(), 4);
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), json({{"ack_up_to_offset", 2}, {"ack_up_to_records", 5}}));
  EXPECT_EQ(emulator_->Stats()["streams"][0]["close_signals"], 1);
  EXPECT_EQ(ReadBack()->num_rows(), 5);
}

TEST_F(FlightTest, ClientHalfCloseAfterCloseSignalEndsAtOnce) {
  Fault(R"({"close_signal": {"after_requests": 1, "duration_ms": 60000}})");
  auto call = OpenReady(*RowsSchema());
  auto t0 = Clock::now();
  ASSERT_TRUE(call->Write(BatchMessage(*Rows(0, 2), 0)));
  bool signalled = false;
  while (!signalled) {
    auto r = call->Read();
    ASSERT_TRUE(r.has_value());
    signalled = r->contains("close_stream_duration_ms");
  }
  std::vector<json> rest;
  grpc::Status st = call->Close(&rest);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(30));
  EXPECT_EQ(ReadBack()->num_rows(), 2);
}

TEST_F(FlightTest, CreationBlockRefusesDoPutWithUnavailable) {
  auto r = HttpPost(*emulator_, "/admin/faults", R"({"block_creation_s": 60})", "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  grpc::Status st = SchemaStatus(*RowsSchema());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("6006"));
}

TEST_F(FlightTest, FlowControlStopsReadingWhilePendingIsHigh) {
  auto options = TestOptions(dir_.path());
  options.max_pending_bytes_per_stream = 1;  // pause after every message
  Start(options);
  auto call = OpenReady(*RowsSchema());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(call->Write(BatchMessage(*Rows(i * 10, 10), i)));
  EXPECT_EQ(call->ReadAcksUntil(19).back()["ack_up_to_records"], 200);
  EXPECT_TRUE(call->Close().ok());
  EXPECT_EQ(ReadBack()->num_rows(), 200);
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
