// Arrow Flight framing: FlightData messages decoded back with Arrow's IPC reader (schema, pieces,
// compression, sliced replays), the splitting rule, PutResult parsing, schema rejection details,
// dictionary decoding and schema mismatch messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/key_value_metadata.h>
#include <grpcpp/support/slice.h>

#include "arrow_zerobus/errors.h"
#include "common/proto_wire.h"
#include "transport/flight_wire_internal.h"
#include "transport/protocol_internal.h"
#include "flight_test_util.h"

namespace arrow_zerobus::internal {
namespace {

using ::testing::HasSubstr;

using testing::ArrayFromJson;
using testing::ErrorInfoStatus;
using testing::FlattenBuffer;
using testing::PutBytes;

// The length-delimited fields of a FlightData message by number (each must appear once).
std::map<uint32_t, std::string> FlightDataFields(grpc::ByteBuffer& bb) {
  const std::string bytes = FlattenBuffer(bb);
  wire::Reader in(bytes);
  std::map<uint32_t, std::string> fields;
  while (!in.done()) {
    uint64_t key = 0;
    std::string_view value;
    if (!in.Tag(&key)) {
      ADD_FAILURE() << "malformed field key";
      break;
    }
    EXPECT_EQ(key & 7, 2u) << "FlightData fields are all bytes";
    if (!in.Bytes(&value)) {
      ADD_FAILURE() << "malformed or truncated field " << (key >> 3);
      break;
    }
    EXPECT_EQ(fields.count(static_cast<uint32_t>(key >> 3)), 0u);
    fields[static_cast<uint32_t>(key >> 3)] = std::string(value);
  }
  return fields;
}

std::shared_ptr<arrow::Buffer> Owned(const std::string& s) {
  return arrow::Buffer::FromString(s);
}

std::shared_ptr<arrow::RecordBatch> DecodeBatch(grpc::ByteBuffer& bb,
                                                const std::shared_ptr<arrow::Schema>& schema,
                                                std::string* app_metadata = nullptr) {
  EXPECT_EQ(FlightDataFields(bb).count(1), 0u) << "no FlightDescriptor";
  auto decoded = testing::DecodeFlightData(FlattenBuffer(bb), schema);
  EXPECT_EQ(decoded.error, "");
  if (app_metadata) *app_metadata = decoded.app_metadata;
  return decoded.batch;
}

std::shared_ptr<arrow::Schema> TestSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("name", arrow::large_utf8()),
                        arrow::field("score", arrow::float64())});
}

std::shared_ptr<arrow::RecordBatch> TestRows(int64_t n, int64_t first = 0) {
  arrow::Int64Builder ids;
  arrow::LargeStringBuilder names;
  arrow::DoubleBuilder scores;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(ids.Append(first + i).ok());
    if ((first + i) % 5 == 3) {
      EXPECT_TRUE(names.AppendNull().ok());
    } else {
      EXPECT_TRUE(names.Append("name-" + std::to_string(first + i) + "-aaaaaaaaaaaaaaaa").ok());
    }
    EXPECT_TRUE(scores.Append(static_cast<double>(first + i) / 4).ok());
  }
  return arrow::RecordBatch::Make(TestSchema(), n,
                                  {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                   scores.Finish().ValueOrDie()});
}

std::shared_ptr<const FlightPiece> Encode(std::shared_ptr<arrow::RecordBatch> rows,
                                          IpcCompression compression = IpcCompression::kNone) {
  auto options = FlightIpcOptions(compression);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  auto piece = EncodeFlightPiece(std::move(rows), *options);
  EXPECT_TRUE(piece.ok()) << piece.status().ToString();
  return *piece;
}

StreamOptions FlightOptions(std::shared_ptr<arrow::Schema> schema) {
  StreamOptions o;
  o.endpoint = "http://127.0.0.1:1";
  o.table_name = "main.default.t";
  o.record_type = RecordType::kArrow;
  o.arrow_schema = std::move(schema);
  return o;
}

// ---- tests ------------------------------------------------------------------------------------

TEST(FlightWire, SchemaMessageIsTheIpcSchemaWithoutDescriptorOrMetadata) {
  auto ipc = FlightIpcOptions(IpcCompression::kNone).ValueOrDie();
  auto bb = MakeSchemaFlightData(*TestSchema(), ipc).ValueOrDie();
  auto fields = FlightDataFields(bb);
  ASSERT_EQ(fields.size(), 1u) << "only data_header: no descriptor, app_metadata or body";
  ASSERT_EQ(fields.count(2), 1u);
  // No continuation marker or length prefix in front of the flatbuffer.
  ASSERT_GE(fields[2].size(), 4u);
  EXPECT_NE(fields[2].substr(0, 4), std::string("\xff\xff\xff\xff", 4));
  auto message = arrow::ipc::Message::Open(Owned(fields[2]), nullptr).ValueOrDie();
  EXPECT_EQ(message->type(), arrow::ipc::MessageType::SCHEMA);
  EXPECT_EQ(message->metadata_version(), arrow::ipc::MetadataVersion::V5);
  arrow::ipc::DictionaryMemo memo;
  auto schema = arrow::ipc::ReadSchema(*message, &memo).ValueOrDie();
  EXPECT_TRUE(schema->Equals(*TestSchema(), true)) << schema->ToString();
}

TEST(FlightWire, PieceDecodesBackWithOffsetMetadata) {
  auto rows = TestRows(100);
  auto piece = Encode(rows);
  auto bb = MakePieceFlightData(piece, 7);
  std::string metadata;
  auto decoded = DecodeBatch(bb, TestSchema(), &metadata);
  ASSERT_NE(decoded, nullptr);
  EXPECT_EQ(metadata, R"({"offset_id":7})");
  EXPECT_TRUE(decoded->Equals(*rows));
  EXPECT_EQ(piece->wire_bytes, piece->payload.metadata->size() + piece->payload.body_length);
}

TEST(FlightWire, BodyBuffersAreSentWithoutCopy) {
  auto rows = TestRows(1000);
  auto piece = Encode(rows);
  auto bb = MakePieceFlightData(piece, 0);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(bb.Dump(&slices).ok());
  // The int64 ids' values buffer is one of the slices, at its own address.
  const uint8_t* ids = rows->column(0)->data()->buffers[1]->data();
  bool found = false;
  for (const auto& s : slices) found = found || s.begin() == ids;
  EXPECT_TRUE(found) << "the id column's buffer was copied";
  // The slices keep the buffers alive after the piece is gone.
  piece.reset();
  rows.reset();
  std::string metadata;
  auto decoded = DecodeBatch(bb, TestSchema(), &metadata);
  ASSERT_NE(decoded, nullptr);
  EXPECT_EQ(decoded->num_rows(), 1000);
  EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(decoded->column(0))->Value(999), 999);
}

TEST(FlightWire, SlicedRowsDecodeBack) {
  auto rows = TestRows(50)->Slice(13, 21);  // offsets into the buffers: bitmaps re-based
  auto bb = MakePieceFlightData(Encode(rows), 3);
  auto decoded = DecodeBatch(bb, TestSchema());
  ASSERT_NE(decoded, nullptr);
  EXPECT_TRUE(decoded->Equals(*rows));
}

class FlightCompression : public ::testing::TestWithParam<IpcCompression> {};

TEST_P(FlightCompression, CompressedPiecesDecodeBackAndAreSmaller) {
  auto rows = TestRows(5000);
  auto plain = Encode(rows);
  auto packed = Encode(rows, GetParam());
  EXPECT_LT(packed->payload.body_length, plain->payload.body_length);
  auto bb = MakePieceFlightData(packed, 0);
  auto decoded = DecodeBatch(bb, TestSchema());
  ASSERT_NE(decoded, nullptr);
  EXPECT_TRUE(decoded->Equals(*rows));
}

INSTANTIATE_TEST_SUITE_P(Codecs, FlightCompression,
                         ::testing::Values(IpcCompression::kLz4Frame, IpcCompression::kZstd));

TEST(FlightWire, SplitFollowsTheVendorRule) {
  auto rows = TestRows(1000);
  int64_t size = 0;
  for (const auto& c : rows->columns()) size += arrow::util::TotalBufferSize(*c);
  // One piece when it fits.
  auto one = SplitForFlight(*rows, size);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].begin, 0);
  EXPECT_EQ(one[0].end, 1000);
  // n = ceil(size / target) = 3 -> 333 rows per piece and a 1-row remainder piece.
  auto three = SplitForFlight(*rows, (size + 2) / 3);
  ASSERT_EQ(three.size(), 4u);
  EXPECT_EQ(three[0].end, 333);
  EXPECT_EQ(three[2].end, 999);
  EXPECT_EQ(three[3].begin, 999);
  EXPECT_EQ(three[3].end, 1000);
  // More pieces than rows: one row each.
  auto tiny = SplitForFlight(*TestRows(4), 1);
  EXPECT_EQ(tiny.size(), 4u);
}

TEST(FlightWire, SplitCountsOnlyTheRowsOfASlice) {
  auto rows = TestRows(1000);
  int64_t size = 0;
  for (const auto& c : rows->columns()) size += arrow::util::TotalBufferSize(*c);
  // A tenth of the batch is about a tenth of the bytes: it fits a target of a fifth.
  auto pieces = SplitForFlight(*rows->Slice(0, 100), size / 5);
  EXPECT_EQ(pieces.size(), 1u);
}

TEST(FlightWire, ProtocolFramesTheUnackedSuffixOfAPartlyAckedPiece) {
  auto protocol = MakeFlightProtocol(FlightOptions(TestSchema())).ValueOrDie();
  EXPECT_STREQ(protocol->method(), "/arrow.flight.protocol.FlightService/DoPut");
  auto rows = TestRows(40);
  OutgoingRequest req;
  req.piece = Encode(rows);
  req.skip_rows = 15;
  auto bb = protocol->Frame(req, 2).ValueOrDie();
  std::string metadata;
  auto decoded = DecodeBatch(bb, TestSchema(), &metadata);
  ASSERT_NE(decoded, nullptr);
  EXPECT_EQ(metadata, R"({"offset_id":2})");
  EXPECT_TRUE(decoded->Equals(*rows->Slice(15)));
  // The open request is the schema message.
  auto open = protocol->OpenRequest();
  EXPECT_EQ(FlightDataFields(open).count(2), 1u);
}

grpc::ByteBuffer PutResult(const std::string& app_metadata) {
  std::string bytes;
  if (!app_metadata.empty()) PutBytes(1, app_metadata, &bytes);
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

TEST(FlightWire, PutResultParsing) {
  auto ready = PutResult(R"({"ack_up_to_offset":-1,"ack_up_to_records":0})");
  auto r = ParsePutResult(&ready).ValueOrDie();
  EXPECT_EQ(r.ack_up_to_offset, -1);
  EXPECT_EQ(r.ack_up_to_records, 0);
  EXPECT_FALSE(r.close_stream_duration_ms);

  auto ack = PutResult(
      R"({"ack_up_to_offset":4,"ack_up_to_records":5000,"close_stream_duration_ms":1500,"x":1})");
  r = ParsePutResult(&ack).ValueOrDie();
  EXPECT_EQ(r.ack_up_to_offset, 4);
  EXPECT_EQ(r.ack_up_to_records, 5000);
  EXPECT_EQ(r.close_stream_duration_ms, 1500);

  auto null_close = PutResult(
      R"({"ack_up_to_offset":0,"ack_up_to_records":1,"close_stream_duration_ms":null})");
  EXPECT_FALSE(ParsePutResult(&null_close).ValueOrDie().close_stream_duration_ms);

  for (const std::string& bad :
       {std::string(), std::string("not json"), std::string(R"({"ack_up_to_offset":1})"),
        std::string(R"({"ack_up_to_offset":"1","ack_up_to_records":1})"),
        std::string(R"({"ack_up_to_offset":1,"ack_up_to_records":-3})"), std::string("[1,2]")}) {
    auto msg = PutResult(bad);
    EXPECT_FALSE(ParsePutResult(&msg).ok()) << bad;
  }
}

std::vector<WireEvent> Parse(const WireProtocol& p, const std::string& json, bool opened) {
  auto msg = PutResult(json);
  std::vector<WireEvent> events;
  p.Parse(&msg, opened, &events);
  return events;
}

TEST(FlightWire, ProtocolEventsForSetupAcksAndCloseSignals) {
  auto protocol = MakeFlightProtocol(FlightOptions(TestSchema())).ValueOrDie();
  using Kind = WireEvent::Kind;
  auto ev = Parse(*protocol, R"({"ack_up_to_offset":-1,"ack_up_to_records":0})", false);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::kOpened);

  ev = Parse(*protocol, R"({"ack_up_to_offset":3,"ack_up_to_records":0})", false);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::kError);
  EXPECT_TRUE(IsRetryable(ev[0].error));
  EXPECT_THAT(ev[0].error.message(), HasSubstr("got an ack for offset 3"));

  ev = Parse(*protocol, "garbage", false);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::kError);
  EXPECT_FALSE(IsRetryable(ev[0].error));
  EXPECT_THAT(ev[0].error.message(), HasSubstr("malformed setup response"));

  ev = Parse(*protocol, R"({"ack_up_to_offset":2,"ack_up_to_records":300})", true);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::kAckRecords);
  EXPECT_EQ(ev[0].value, 300);

  ev = Parse(*protocol,
             R"({"ack_up_to_offset":-1,"ack_up_to_records":0,"close_stream_duration_ms":2500})",
             true);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, Kind::kCloseSignal);
  EXPECT_EQ(ev[1].close_after.count(), 2500);

  // After setup an unreadable PutResult is ignored (as the vendor clients do).
  EXPECT_TRUE(Parse(*protocol, "garbage", true).empty());
}

TEST(FlightWire, SchemaRejectionNamesCausesAndServerMessage) {
  auto protocol = MakeFlightProtocol(FlightOptions(TestSchema())).ValueOrDie();
  grpc::Status status(grpc::StatusCode::INVALID_ARGUMENT,
                      "Arrow Flight schema validation failed: field 'score' is not in the table",
                      ErrorInfoStatus(3, "schema validation failed", "SCHEMA_VALIDATION_FAILED",
                                      "FIELD_NOT_IN_TABLE,TYPE_INCOMPATIBLE", "8001"));
  auto st = protocol->EndStatus(status);
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(IsRetryable(*st));
  EXPECT_THAT(st->message(), HasSubstr("FIELD_NOT_IN_TABLE,TYPE_INCOMPATIBLE"));
  EXPECT_THAT(st->message(), HasSubstr("field 'score' is not in the table"));
  EXPECT_THAT(st->message(), HasSubstr("error code 8001"));
  EXPECT_THAT(st->message(), HasSubstr("main.default.t"));
  EXPECT_EQ(GetZerobusDetail(*st)->server_code(), 8001);

  // Another reason, or no details: the stream's usual status handling.
  grpc::Status other(grpc::StatusCode::INVALID_ARGUMENT, "x",
                     ErrorInfoStatus(3, "x", "SOMETHING_ELSE", "A", "1"));
  EXPECT_FALSE(protocol->EndStatus(other).has_value());
  EXPECT_FALSE(protocol->EndStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "x"))
                   .has_value());
}

TEST(FlightWire, DictionaryColumnsAreDecodedForTheWire) {
  auto dict_type = arrow::dictionary(arrow::int8(), arrow::large_utf8());
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("tag", dict_type)});
  auto values = ArrayFromJson(arrow::large_utf8(), R"(["red", "green"])");
  auto indices = ArrayFromJson(arrow::int8(), "[1, null, 0, 1]");
  auto tags = arrow::DictionaryArray::FromArrays(dict_type, indices, values).ValueOrDie();
  auto ids = ArrayFromJson(arrow::int64(), "[1, 2, 3, 4]");
  auto batch = arrow::RecordBatch::Make(schema, 4, {ids, tags});
  auto wire_schema = FlightWireSchema(*schema);
  EXPECT_TRUE(wire_schema->field(1)->type()->Equals(*arrow::large_utf8()));
  auto hydrated = HydrateDictionaries(batch, wire_schema).ValueOrDie();
  auto expected = ArrayFromJson(arrow::large_utf8(), R"(["green", null, "red", "green"])");
  EXPECT_TRUE(hydrated->column(1)->Equals(*expected)) << hydrated->column(1)->ToString();

  auto nested = arrow::schema({arrow::field("l", arrow::list(dict_type))});
  auto st = CheckFlightSchema(*nested);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("field 0 'l'"));
}

TEST(FlightWire, SchemaMismatchIsDescribed) {
  auto stream = TestSchema();
  EXPECT_EQ(DescribeSchemaMismatch(*stream, *stream), "");
  auto utf8 = arrow::schema({arrow::field("id", arrow::int64(), false),
                             arrow::field("name", arrow::utf8()),
                             arrow::field("score", arrow::float64())});
  EXPECT_EQ(DescribeSchemaMismatch(*utf8, *stream),
            "field 1 'name' is string in the batch but large_string in the stream's schema");
  auto nullable = arrow::schema({arrow::field("id", arrow::int64(), true),
                                 arrow::field("name", arrow::large_utf8()),
                                 arrow::field("score", arrow::float64())});
  EXPECT_THAT(DescribeSchemaMismatch(*nullable, *stream), HasSubstr("field 0 'id' is nullable"));
  EXPECT_THAT(DescribeSchemaMismatch(*arrow::schema({arrow::field("id", arrow::int64())}),
                                     *stream),
              HasSubstr("1 fields"));
  auto with_meta = stream->WithMetadata(arrow::key_value_metadata({"k"}, {"v"}));
  EXPECT_THAT(DescribeSchemaMismatch(*with_meta, *stream), HasSubstr("metadata"));
}

}  // namespace
}  // namespace arrow_zerobus::internal
