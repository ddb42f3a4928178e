// The EphemeralStream protocol over real loopback gRPC: happy paths, create_stream refusals,
// offsets, limits, malformed records, acks, vanishing clients.
#include <future>
#include <regex>
#include <thread>

#include <arrow/api.h>
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "decode/table_schema.h"
#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kTable = "main.default.rows";

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(TestOptions(dir_.path())); }

  void Start(EmulatorOptions options) {
    if (emulator_) {
      ASSERT_TRUE(emulator_->Shutdown().ok());
    }
    emulator_ = std::make_unique<Emulator>(std::move(options));
    auto st = emulator_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<Client>("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
  }

  std::string Token(const std::string& table = kTable) { return BearerFor(*emulator_, table); }

  std::shared_ptr<arrow::Table> ReadBack(const std::string& table = kTable) {
    auto path = emulator_->store().TablePath(table);
    EXPECT_TRUE(path.ok()) << path.status().ToString();
    auto t = ReadDeltaTable(*path);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : nullptr;
  }

  grpc::Status Create(const zb::EphemeralStreamRequest& create,
                      const std::string& header = kTable) {
    return CreateStatus(*client_, Token(), header, create);
  }

  TempDir dir_;
  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<Client> client_;
  RowEncoder enc_;
  google::protobuf::DescriptorProto desc_ = RowDescriptor();
};

TEST_F(StreamTest, ProtoHappyPathRecordsAndBatchLandInDeltaTable) {
  std::string stream_id;
  auto call = OpenCreated(*client_, Token(), kTable, &desc_, zb::PROTO, &stream_id);
  EXPECT_TRUE(std::regex_match(
      stream_id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << stream_id;
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "one", 1.5))));
  std::string two = "two";
  ASSERT_TRUE(call.Write(ProtoRecord(1, enc_.Encode(2, &two, nullptr))));
  ASSERT_TRUE(call.Write(ProtoBatch(2, {enc_.Encode(3, "three", 3.5), enc_.Encode(4, nullptr, nullptr),
                                        enc_.Encode(5, "five", -5.0)})));
  auto acks = call.ReadAcksUntil(2);
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), 2);
  grpc::Status st = call.Close();
  EXPECT_TRUE(st.ok()) << st.error_message();

  auto table = ReadBack();
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->num_rows(), 5);
  auto combined = table->CombineChunksToBatch().ValueOrDie();
  auto ids = std::static_pointer_cast<arrow::Int64Array>(combined->GetColumnByName("id"));
  auto names = std::static_pointer_cast<arrow::StringArray>(combined->GetColumnByName("name"));
  auto values = std::static_pointer_cast<arrow::DoubleArray>(combined->GetColumnByName("value"));
  ASSERT_NE(ids, nullptr);
  ASSERT_NE(names, nullptr);
  ASSERT_NE(values, nullptr);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ids->Value(i), i + 1);
  EXPECT_EQ(names->GetString(0), "one");
  EXPECT_EQ(names->GetString(1), "two");
  EXPECT_TRUE(values->IsNull(1));
  EXPECT_TRUE(names->IsNull(3));
  EXPECT_TRUE(values->IsNull(3));
  EXPECT_DOUBLE_EQ(values->Value(0), 1.5);
  EXPECT_DOUBLE_EQ(values->Value(4), -5.0);
  EXPECT_FALSE(table->schema()->GetFieldByName("id")->nullable());
}

TEST_F(StreamTest, JsonHappyPathIntoDeclaredTable) {
  auto options = TestOptions(dir_.path());
  auto schema = SchemaFromDeclaration(
      R"({"columns": [{"name": "id", "type": "bigint", "nullable": false},
                      {"name": "name", "type": "string"}, {"name": "value", "type": "double"}]})");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  options.tables.push_back({"main.default.json_rows", *schema});
  options.strict = true;
  Start(options);

  const std::string table = "main.default.json_rows";
  auto call = OpenCreated(*client_, Token(table), table, nullptr, zb::JSON);
  ASSERT_TRUE(call.Write(JsonRecord(0, R"({"id": 10, "name": "ten", "value": 0.25})")));
  ASSERT_TRUE(call.Write(JsonBatch(1, {R"({"id": 11})", R"({"id": 12, "name": "twelve"})"})));
  auto acks = call.ReadAcksUntil(1);
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), 1);
  EXPECT_TRUE(call.Close().ok());

  auto t = ReadBack(table);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->num_rows(), 3);
  auto b = t->CombineChunksToBatch().ValueOrDie();
  auto ids = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("id"));
  auto names = std::static_pointer_cast<arrow::StringArray>(b->GetColumnByName("name"));
  EXPECT_EQ(ids->Value(0), 10);
  EXPECT_EQ(ids->Value(2), 12);
  EXPECT_EQ(names->GetString(0), "ten");
  EXPECT_TRUE(names->IsNull(1));
  EXPECT_EQ(names->GetString(2), "twelve");
}

TEST_F(StreamTest, InitialMetadataArrivesBeforeAnyRequest) {
  auto call = client_->Open(Token(), kTable, std::chrono::seconds(5));
  // Nothing written: a server that reads before sending metadata would leave this hanging until
  // the deadline, and the call would fail.
  auto start = std::chrono::steady_clock::now();
  call.stream->WaitForInitialMetadata();
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_LT(waited, std::chrono::seconds(3));
  // The call is still alive: create_stream works afterwards.
  ASSERT_TRUE(call.Write(CreateRequest(kTable, &desc_)));
  zb::EphemeralStreamResponse r;
  ASSERT_TRUE(call.Read(&r));
  EXPECT_TRUE(r.has_create_stream_response());
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(StreamTest, CreateRefusalsSayWhatIsWrong) {
  struct Case {
    std::string what;
    zb::EphemeralStreamRequest create;
    std::string header;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  {
    auto c = CreateRequest(kTable, &desc_);
    c.mutable_create_stream()->clear_table_name();
    cases.push_back({"missing table", c, kTable, grpc::StatusCode::INVALID_ARGUMENT,
                     "table_name is missing"});
  }
  cases.push_back({"two-part name", CreateRequest("default.rows", &desc_), "default.rows",
                   grpc::StatusCode::INVALID_ARGUMENT, "three parts"});
  cases.push_back({"four-part name", CreateRequest("a.b.c.d", &desc_), "a.b.c.d",
                   grpc::StatusCode::INVALID_ARGUMENT, "three parts"});
  cases.push_back({"empty part", CreateRequest("a..c", &desc_), "a..c",
                   grpc::StatusCode::INVALID_ARGUMENT, "empty part"});
  cases.push_back({"no table header", CreateRequest(kTable, &desc_), "",
                   grpc::StatusCode::INVALID_ARGUMENT, "x-databricks-zerobus-table-name"});
  cases.push_back({"header differs", CreateRequest(kTable, &desc_), "main.default.other",
                   grpc::StatusCode::INVALID_ARGUMENT, "does not match"});
  {
    auto c = CreateRequest(kTable, &desc_);
    c.mutable_create_stream()->clear_record_type();
    c.mutable_create_stream()->mutable_unknown_fields()->AddVarint(4, 3);
    cases.push_back({"unknown record type", c, kTable, grpc::StatusCode::INVALID_ARGUMENT,
                     "unsupported record_type 3"});
  }
  cases.push_back({"proto without descriptor", CreateRequest(kTable, nullptr), kTable,
                   grpc::StatusCode::INVALID_ARGUMENT, "descriptor_proto is required"});
  {
    auto c = CreateRequest(kTable, nullptr);
    c.mutable_create_stream()->set_descriptor_proto(std::string("\xff\xff\xff\x07garbage", 11));
    cases.push_back({"garbage descriptor", c, kTable, grpc::StatusCode::INVALID_ARGUMENT,
                     "not a serialized google.protobuf.DescriptorProto"});
  }
  {
    google::protobuf::DescriptorProto empty;
    empty.set_name("Empty");
    cases.push_back({"descriptor without fields", CreateRequest(kTable, &empty), kTable,
                     grpc::StatusCode::INVALID_ARGUMENT, "has no fields"});
  }
  cases.push_back({"json stream to unknown table", CreateRequest("main.default.nope", nullptr,
                                                                 zb::JSON),
                   "main.default.nope", grpc::StatusCode::NOT_FOUND, ""});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string table = c.create.create_stream().table_name();
    auto token = BearerFor(*emulator_, table.empty() ? kTable : table);
    grpc::Status st = CreateStatus(*client_, token, c.header, c.create);
    EXPECT_EQ(st.error_code(), c.code) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.message));
  }
}

TEST_F(StreamTest, DescriptorThatDoesNotMatchTheTableIsRefused) {
  // First stream creates the table from RowDescriptor().
  {
    auto call = OpenCreated(*client_, Token(), kTable, &desc_);
    EXPECT_TRUE(call.Close().ok());
  }
  auto other = desc_;
  other.mutable_field(1)->set_name("label");  // column "name" has no field now
  grpc::Status st = Create(CreateRequest(kTable, &other));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("name"));

  auto optional_id = desc_;
  optional_id.mutable_field(0)->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  st = Create(CreateRequest(kTable, &optional_id));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("id"));
}

TEST_F(StreamTest, StrictModeUnknownTableIsNotFound) {
  auto options = TestOptions(dir_.path());
  options.strict = true;
  Start(options);
  grpc::Status st = Create(CreateRequest(kTable, &desc_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr(kTable));
}

TEST_F(StreamTest, FirstMessageMustBeCreateStream) {
  auto call = client_->Open(Token(), kTable);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "x", 1))));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("first message of a stream must be create_stream"));
}

TEST_F(StreamTest, CreateStreamTwiceIsRefused) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(call.Write(CreateRequest(kTable, &desc_)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("create_stream sent twice"));
}

TEST_F(StreamTest, OffsetGapIsInvalidArgument) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "a", 1))));
  call.Write(ProtoRecord(2, enc_.Encode(2, "b", 2)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("got offset_id 2, expected 1"));
}

TEST_F(StreamTest, OffsetRepeatIsInvalidArgument) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "a", 1))));
  call.Write(ProtoRecord(0, enc_.Encode(1, "a", 1)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("got offset_id 0, expected 1"));
}

TEST_F(StreamTest, OffsetsMustStartAtZero) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  call.Write(ProtoRecord(1, enc_.Encode(1, "a", 1)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("expected 0"));
}

TEST_F(StreamTest, MissingOffsetIsInvalidArgument) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  auto r = ProtoRecord(0, enc_.Encode(1, "a", 1));
  r.mutable_ingest_record()->clear_offset_id();
  call.Write(r);
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("offset_id is missing"));
}

TEST_F(StreamTest, EmptyRequestIsInvalidArgument) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  call.Write(zb::EphemeralStreamRequest());
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("no payload"));
}

TEST_F(StreamTest, OversizeMessageIsInvalidArgument) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  // One 11 MiB batch of 1 MiB-ish records: over the 10 MiB protocol limit.
  std::vector<std::string> records;
  std::string big(1 << 20, 'x');
  for (int i = 0; i < 11; ++i) records.push_back(enc_.Encode(i, big, 0));
  call.Write(ProtoBatch(0, records));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("the limit is 10485760 bytes"));
}

TEST_F(StreamTest, MessageJustUnderTheLimitIsAccepted) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  std::vector<std::string> records;
  std::string big(1 << 20, 'y');
  for (int i = 0; i < 9; ++i) records.push_back(enc_.Encode(i, big, 0));
  ASSERT_TRUE(call.Write(ProtoBatch(0, records)));
  auto acks = call.ReadAcksUntil(0);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0], 0);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(StreamTest, MessageBeyondTheTransportGuardEndsOnlyThatStream) {
  // Above gRPC's own receive limit (2 x 10 MiB + 1 MiB) the transport refuses the message.
  auto healthy = OpenCreated(*client_, Token(), kTable, &desc_);
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  std::string big(22 << 20, 'z');
  call.Write(ProtoRecord(0, enc_.Encode(1, big, 0)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  ASSERT_TRUE(healthy.Write(ProtoRecord(0, enc_.Encode(2, "fine", 2))));
  EXPECT_EQ(healthy.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(healthy.Close().ok());
}

TEST_F(StreamTest, UnspecifiedRecordTypeMeansProto) {
  auto c = CreateRequest(kTable, &desc_, zb::RECORD_TYPE_UNSPECIFIED);
  auto call = client_->Open(Token(), kTable);
  ASSERT_TRUE(call.Write(c));
  zb::EphemeralStreamResponse r;
  ASSERT_TRUE(call.Read(&r));
  ASSERT_TRUE(r.has_create_stream_response());
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "u", 1))));
  EXPECT_EQ(call.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(StreamTest, JsonStreamWithDescriptorIsCheckedAndCanCreateTheTable) {
  const std::string table = "main.default.json_created";
  auto call = OpenCreated(*client_, Token(table), table, &desc_, zb::JSON);
  ASSERT_TRUE(call.Write(JsonRecord(0, R"({"id": 5, "name": "five"})")));
  EXPECT_EQ(call.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(call.Close().ok());
  auto t = ReadBack(table);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), 1);
  auto other = desc_;
  other.mutable_field(2)->set_name("amount");
  grpc::Status st =
      CreateStatus(*client_, Token(table), table, CreateRequest(table, &other, zb::JSON));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StreamTest, MalformedRecordNamesTheOffset) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "ok", 1))));
  // Field 2 (string) announced with 100 bytes but only 3 follow.
  call.Write(ProtoBatch(1, {enc_.Encode(2, "ok", 2), std::string("\x08\x01\x12\x64" "abc", 7)}));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("offset 1"));
  EXPECT_THAT(st.error_message(), HasSubstr("record 1"));
}

TEST_F(StreamTest, MissingRequiredFieldIsRefused) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  call.Write(ProtoRecord(0, std::string("\x12\x01z", 3)));  // only name = "z", no id
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("offset 0"));
  EXPECT_THAT(st.error_message(), HasSubstr("id"));
}

TEST_F(StreamTest, JsonRecordOnProtoStreamIsRefused) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  call.Write(JsonRecord(0, R"({"id": 1})"));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("carries JSON records"));
}

TEST_F(StreamTest, MalformedJsonRecordNamesTheOffset) {
  // Create the table with a proto stream, then write JSON to it.
  {
    auto call = OpenCreated(*client_, Token(), kTable, &desc_);
    EXPECT_TRUE(call.Close().ok());
  }
  auto call = OpenCreated(*client_, Token(), kTable, nullptr, zb::JSON);
  ASSERT_TRUE(call.Write(JsonRecord(0, R"({"id": 1})")));
  call.Write(JsonBatch(1, {R"({"id": 2})", R"({"id": "not a number"})"}));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("offset 1"));
}

TEST_F(StreamTest, AcksAreCumulativeMonotonicAndEndAtTheLastOffset) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  constexpr int kRequests = 300;
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(call.Write(ProtoRecord(i, enc_.Encode(i, "r", i))));
    }
  });
  auto acks = call.ReadAcksUntil(kRequests - 1);
  writer.join();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), kRequests - 1);
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_GT(acks[i], acks[i - 1]);
  EXPECT_GE(acks.front(), 0);
  EXPECT_TRUE(call.Close().ok());
  auto t = ReadBack();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), kRequests);
}

TEST_F(StreamTest, AckMeansRowsAreInTheTable) {
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(call.Write(ProtoBatch(0, {enc_.Encode(1, "a", 1), enc_.Encode(2, "b", 2)})));
  auto acks = call.ReadAcksUntil(0);
  ASSERT_EQ(acks.back(), 0);
  // Read while the stream is still open: acked rows are already committed.
  auto t = ReadBack();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), 2);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(StreamTest, ClientVanishingMidStreamLeavesOtherStreamsWorking) {
  const std::string table_b = "main.default.rows_b";
  auto healthy = OpenCreated(*client_, Token(table_b), table_b, &desc_);
  ASSERT_TRUE(healthy.Write(ProtoRecord(0, enc_.Encode(1, "b", 1))));
  ASSERT_EQ(healthy.ReadAcksUntil(0).back(), 0);

  for (int round = 0; round < 3; ++round) {
    // A separate channel that is torn down with requests in flight.
    auto gone = std::make_unique<Client>("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
    auto call = OpenCreated(*gone, Token(), kTable, &desc_);
    for (int i = 0; i < 20; ++i) call.Write(ProtoRecord(i, enc_.Encode(i, "x", i)));
    call.context->TryCancel();
    call.stream->Finish();
    call.stream.reset();
    gone.reset();
  }
  // The other stream goes on.
  for (int i = 1; i < 50; ++i) ASSERT_TRUE(healthy.Write(ProtoRecord(i, enc_.Encode(i, "b", i))));
  EXPECT_EQ(healthy.ReadAcksUntil(49).back(), 49);
  EXPECT_TRUE(healthy.Close().ok());
  // Vanished streams are cleaned up.
  EXPECT_TRUE(WaitForStreamsEnded(*emulator_));
  auto t = ReadBack(table_b);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), 50);
  // And new streams still work.
  auto again = OpenCreated(*client_, Token(), kTable, &desc_);
  ASSERT_TRUE(again.Write(ProtoRecord(0, enc_.Encode(7, "z", 7))));
  EXPECT_EQ(again.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(again.Close().ok());
}

TEST_F(StreamTest, ManyConcurrentStreamsToOneTable) {
  constexpr int kStreams = 6, kRequests = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] {
      auto call = OpenCreated(*client_, Token(), kTable, &desc_);
      for (int i = 0; i < kRequests; ++i) {
        call.Write(ProtoRecord(i, enc_.Encode(s * 1000 + i, "c", i)));
      }
      auto acks = call.ReadAcksUntil(kRequests - 1);
      if (!acks.empty() && acks.back() == kRequests - 1 && call.Close().ok()) ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kStreams);
  auto t = ReadBack();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), kStreams * kRequests);
}

TEST_F(StreamTest, ReadingPausesWhileRowsAreNotDurableAndResumes) {
  auto options = TestOptions(dir_.path());
  // Every request exceeds the budget: the stream reads one request per commit.
  options.max_pending_bytes_per_stream = 1;
  options.commit_interval_ms = 2;
  Start(options);
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  constexpr int kRequests = 30;
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) call.Write(ProtoRecord(i, enc_.Encode(i, "p", i)));
  });
  auto acks = call.ReadAcksUntil(kRequests - 1);
  writer.join();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), kRequests - 1);
  EXPECT_TRUE(call.Close().ok());
  // With at most one request pending at a time, each commit holds one request.
  auto stats = emulator_->Stats();
  EXPECT_EQ(stats["tables"][0]["commits"].get<int64_t>(), kRequests);
  auto t = ReadBack();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_rows(), kRequests);
}

TEST_F(StreamTest, OtherMethodsAreUnimplemented) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(emulator_->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/databricks.zerobus.Zerobus/Other", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status st) { done.set_value(st); });
  grpc::Status st = done.get_future().get();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(StreamTest, NullSinkAcksWithoutStoring) {
  auto options = TestOptions(dir_.path());
  options.sink = SinkKind::kNull;
  Start(options);
  auto call = OpenCreated(*client_, Token(), kTable, &desc_);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(call.Write(ProtoRecord(i, enc_.Encode(i, "n", i))));
  EXPECT_EQ(call.ReadAcksUntil(9).back(), 9);
  EXPECT_TRUE(call.Close().ok());
  auto stats = emulator_->Stats();
  ASSERT_EQ(stats["streams"].size(), 1u);
  EXPECT_EQ(stats["streams"][0]["rows"], 10);
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
