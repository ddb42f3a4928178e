// Encoder unit tests: hand-checked bytes, every row-failure kind, chunking, batch-level errors.
#include <thread>

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <google/protobuf/text_format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "encode/encode_test_util.h"
#include "zerobus.pb.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;
using testing::EncodeAndVerify;

std::shared_ptr<arrow::Array> Json(const std::shared_ptr<arrow::DataType>& type, const char* json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

std::shared_ptr<arrow::RecordBatch> Batch(const std::shared_ptr<arrow::Schema>& schema,
                                          std::vector<std::shared_ptr<arrow::Array>> columns) {
  const int64_t n = columns.empty() ? 0 : columns[0]->length();
  return arrow::RecordBatch::Make(schema, n, std::move(columns));
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::unique_ptr<RecordBatchEncoder> MakeEncoder(const std::shared_ptr<arrow::Schema>& schema,
                                                EncodeOptions options = EncodeOptions::Defaults()) {
  auto encoder = RecordBatchEncoder::Make(schema, options);
  EXPECT_TRUE(encoder.ok()) << encoder.status().ToString();
  return std::move(*encoder);
}

std::unique_ptr<RecordBatchEncoder> MakeBoundEncoder(const std::shared_ptr<arrow::Schema>& schema,
                                                     const char* text_proto) {
  DescriptorProto descriptor;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text_proto, &descriptor));
  auto encoder = RecordBatchEncoder::Make(schema, descriptor);
  EXPECT_TRUE(encoder.ok()) << encoder.status().ToString();
  return encoder.ok() ? std::move(*encoder) : nullptr;
}

TEST(EncoderGolden, FlatRows) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("name", arrow::utf8()),
                               arrow::field("score", arrow::float64()),
                               arrow::field("flag", arrow::boolean())});
  auto batch = Batch(schema, {Json(arrow::int64(), "[1, -1, 300]"),
                              Json(arrow::utf8(), R"(["ab", null, ""])"),
                              Json(arrow::float64(), "[1.5, null, null]"),
                              Json(arrow::boolean(), "[true, false, null]")});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
  ASSERT_EQ(out.num_records(), 3);
  EXPECT_TRUE(out.failed_rows.empty());
  // id=1 (field 1 varint), name="ab" (field 2 length-delimited), score=1.5 (field 3 fixed64),
  // flag=true (field 4 varint).
  EXPECT_EQ(Hex(out.record(0)), "08 01 12 02 61 62 19 00 00 00 00 00 00 f8 3f 20 01");
  // id=-1 is a ten-byte varint; null name and score are absent; flag=false is written.
  EXPECT_EQ(Hex(out.record(1)), "08 ff ff ff ff ff ff ff ff ff 01 20 00");
  // 300 = 0xac 0x02; the empty string is present with length 0.
  EXPECT_EQ(Hex(out.record(2)), "08 ac 02 12 00");
  // Framed records back to back: a ProtoEncodedRecordBatch body.
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].begin, 0);
  EXPECT_EQ(out.chunks[0].end, 3);
  EXPECT_EQ(Hex(out.framed(out.chunks[0])),
            "0a 11 08 01 12 02 61 62 19 00 00 00 00 00 00 f8 3f 20 01 "
            "0a 0d 08 ff ff ff ff ff ff ff ff ff 01 20 00 "
            "0a 05 08 ac 02 12 00");
  databricks::zerobus::ProtoEncodedRecordBatch parsed;
  const std::string_view framed = out.framed(out.chunks[0]);
  ASSERT_TRUE(parsed.ParseFromArray(framed.data(), static_cast<int>(framed.size())));
  ASSERT_EQ(parsed.records_size(), 3);
  EXPECT_EQ(parsed.records(2), std::string(out.record(2)));
}

TEST(EncoderGolden, NestedRows) {
  auto struct_type = arrow::struct_({arrow::field("a", arrow::int32())});
  auto list_type = arrow::list(arrow::int32());
  auto map_type = arrow::map(arrow::utf8(), arrow::int32());
  auto schema = arrow::schema({arrow::field("s", struct_type), arrow::field("l", list_type),
                               arrow::field("m", map_type)});
  auto batch = Batch(schema, {Json(struct_type, R"([{"a": 150}, null, {"a": null}])"),
                              Json(list_type, "[[1, 2, 300], null, []]"),
                              Json(map_type, R"([[["k", 7]], [], [["a", null]]])")});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
  ASSERT_EQ(out.num_records(), 3);
  // s = {a: 150}: field 1 message of 3 bytes; l packed (field 2, 4 payload bytes);
  // m entry {key "k" (field 1), value 7 (field 2)} as field 3.
  EXPECT_EQ(Hex(out.record(0)), "0a 03 08 96 01 12 04 01 02 ac 02 1a 05 0a 01 6b 10 07");
  // Null struct, null list and empty map: nothing at all.
  EXPECT_EQ(Hex(out.record(1)), "");
  // A present struct with no fields set is an empty message; an empty list writes nothing;
  // a null map value leaves the entry's value unset.
  EXPECT_EQ(Hex(out.record(2)), "0a 00 1a 03 0a 01 61");
  EXPECT_EQ(Hex(out.framed(out.chunks[0])).substr(0, 5), "0a 12");
}

TEST(EncoderGolden, BoundScalarTypes) {
  auto schema = arrow::schema({
      arrow::field("zz", arrow::int32()), arrow::field("f32", arrow::uint8()),
      arrow::field("sf64", arrow::int64()), arrow::field("color", arrow::utf8()),
      arrow::field("big", arrow::uint64()), arrow::field("plain", arrow::list(arrow::int64())),
      arrow::field("packed", arrow::list(arrow::int32())), arrow::field("code", arrow::int16())});
  auto encoder = MakeBoundEncoder(schema, R"pb(
    name: "Bound"
    field { name: "zz" number: 1 label: LABEL_OPTIONAL type: TYPE_SINT32 }
    field { name: "f32" number: 2 label: LABEL_OPTIONAL type: TYPE_FIXED32 }
    field { name: "sf64" number: 3 label: LABEL_OPTIONAL type: TYPE_SFIXED64 }
    field { name: "color" number: 4 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".Bound.Color" }
    field { name: "big" number: 5 label: LABEL_OPTIONAL type: TYPE_UINT64 }
    field { name: "plain" number: 6 label: LABEL_REPEATED type: TYPE_INT32 }
    field { name: "packed" number: 7 label: LABEL_REPEATED type: TYPE_SINT64 options { packed: true } }
    field { name: "code" number: 8 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".Bound.Color" }
    enum_type { name: "Color" value { name: "A" number: 1 } value { name: "B" number: 2 } }
  )pb");
  ASSERT_NE(encoder, nullptr);
  auto batch = Batch(schema, {Json(arrow::int32(), "[-2]"), Json(arrow::uint8(), "[7]"),
                              Json(arrow::int64(), "[-1]"), Json(arrow::utf8(), R"(["B"])"),
                              Json(arrow::uint64(), "[18446744073709551615]"),
                              Json(arrow::list(arrow::int64()), "[[1, 2]]"),
                              Json(arrow::list(arrow::int32()), "[[-1, 1]]"),
                              Json(arrow::int16(), "[1]")});
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
  ASSERT_EQ(out.num_records(), 1) << (out.failed_rows.empty() ? "" : out.failed_rows[0].message);
  EXPECT_EQ(Hex(out.record(0)),
            "08 03 "                                // sint32 -2 -> zigzag 3
            "15 07 00 00 00 "                       // fixed32 7
            "19 ff ff ff ff ff ff ff ff "           // sfixed64 -1
            "20 02 "                                // enum by name B = 2
            "28 ff ff ff ff ff ff ff ff ff 01 "     // uint64 max
            "30 01 30 02 "                          // unpacked repeated int32
            "3a 02 01 02 "                          // packed sint64 [-1, 1]
            "40 01");                               // enum by number 1
  EncodeAndVerify(*encoder, *batch);
}

// ----------------------------------------------------------------------------------------------
// Row failures: the row is reported with a message naming the column and value; others go on.

void ExpectFailures(const EncodedBatch& out, const std::vector<std::pair<int64_t, std::string>>& expected) {
  ASSERT_EQ(out.failed_rows.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(out.failed_rows[i].row, expected[i].first);
    EXPECT_THAT(out.failed_rows[i].message, HasSubstr(expected[i].second));
  }
}

TEST(EncoderRowFailures, Uint64OverInt64Max) {
  auto schema = arrow::schema({arrow::field("u", arrow::uint64())});
  auto batch = Batch(schema, {Json(arrow::uint64(), "[1, 18446744073709551615, 9223372036854775807, 9223372036854775808]")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{1, "column 'u' row 1: value 18446744073709551615 out of range for int64"},
                       {3, "column 'u' row 3: value 9223372036854775808 out of range for int64"}});
  EXPECT_EQ(out.source_rows, (std::vector<int64_t>{0, 2}));
}

TEST(EncoderRowFailures, TimestampOverflow) {
  auto ts_s = arrow::timestamp(arrow::TimeUnit::SECOND, "UTC");
  auto ts_ms = arrow::timestamp(arrow::TimeUnit::MILLI);
  auto schema = arrow::schema({arrow::field("s", ts_s), arrow::field("ms", ts_ms)});
  auto batch = Batch(schema, {Json(ts_s, "[1, 100000000000000, -9223372036854, null]"),
                              Json(ts_ms, "[-1, 0, 0, 9223372036854776]")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{1, "column 's' row 1: value 100000000000000 (timestamp[s, tz=UTC]) overflows int64 microseconds"},
                       {3, "column 'ms' row 3: value 9223372036854776 (timestamp[ms]) overflows"}});
  testing::ProtoSchema proto(encoder->descriptor());
  auto row0 = proto.Parse(out.record(0));
  const auto* d = proto.descriptor();
  EXPECT_EQ(row0->GetReflection()->GetInt64(*row0, d->FindFieldByName("s")), 1000000);
  EXPECT_EQ(row0->GetReflection()->GetInt64(*row0, d->FindFieldByName("ms")), -1000);
  auto row2 = proto.Parse(out.record(1));
  EXPECT_EQ(row2->GetReflection()->GetInt64(*row2, d->FindFieldByName("s")), -9223372036854000000);
}

TEST(EncoderRowFailures, TimestampNanosAndDate64Floor) {
  auto ts_ns = arrow::timestamp(arrow::TimeUnit::NANO);
  auto schema = arrow::schema({arrow::field("ns", ts_ns), arrow::field("d", arrow::date64())});
  auto batch = Batch(schema, {Json(ts_ns, "[-1, 1999, -1000, -1001]"),
                              Json(arrow::date64(), "[-1, 86399999, -86400000, -86400001]")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ASSERT_EQ(out.num_records(), 4);
  testing::ProtoSchema proto(encoder->descriptor());
  const auto* d = proto.descriptor();
  const int64_t ns[] = {-1, 1, -1, -2};
  const int32_t days[] = {-1, 0, -1, -2};
  for (int i = 0; i < 4; ++i) {
    auto m = proto.Parse(out.record(i));
    EXPECT_EQ(m->GetReflection()->GetInt64(*m, d->FindFieldByName("ns")), ns[i]) << i;
    EXPECT_EQ(m->GetReflection()->GetInt32(*m, d->FindFieldByName("d")), days[i]) << i;
  }
}

TEST(EncoderRowFailures, NullInRequiredField) {
  auto inner = arrow::struct_({arrow::field("v", arrow::int64(), /*nullable=*/false)});
  auto schema = arrow::schema({arrow::field("id", arrow::int32(), false), arrow::field("s", inner)});
  auto batch = Batch(schema, {Json(arrow::int32(), "[1, null, 3, 4]"),
                              Json(inner, R"([{"v": 1}, {"v": 2}, {"v": null}, null])")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{1, "column 'id' row 1: null in required field"},
                       {2, "column 's.v' row 2: null in required field"}});
  EXPECT_EQ(out.source_rows, (std::vector<int64_t>{0, 3}));  // a null optional struct is fine
}

TEST(EncoderRowFailures, NullListElement) {
  auto item = arrow::struct_({arrow::field("value", arrow::int64())});
  auto schema = arrow::schema({arrow::field("xs", arrow::list(arrow::float64())),
                               arrow::field("readings", arrow::list(item))});
  auto batch = Batch(schema, {Json(arrow::list(arrow::float64()), "[[1.0, null], [2.0], null, []]"),
                              Json(arrow::list(item), R"([[], [{"value": 1}, null], null, [{"value": null}]])")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{0, "column 'xs' row 0: null list element"},
                       {1, "column 'readings' row 1: null list element"}});
}

TEST(EncoderRowFailures, NarrowingIntoBoundFields) {
  auto item = arrow::struct_({arrow::field("value", arrow::int64())});
  auto schema = arrow::schema({arrow::field("small", arrow::int64()),
                               arrow::field("readings", arrow::list(item))});
  auto encoder = MakeBoundEncoder(schema, R"pb(
    name: "Narrow"
    field { name: "small" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "readings" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".Narrow.Reading" }
    nested_type { name: "Reading" field { name: "value" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT32 } }
  )pb");
  ASSERT_NE(encoder, nullptr);
  auto batch = Batch(schema, {Json(arrow::int64(), "[2147483647, 2147483648, -2147483648, -2147483649, 0]"),
                              Json(arrow::list(item), R"([[{"value": 4294967295}], [], null, [], [{"value": 1}, {"value": -5}]])")});
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{1, "column 'small' row 1: value 2147483648 out of range for int32"},
                       {3, "column 'small' row 3: value -2147483649 out of range for int32"},
                       {4, "column 'readings.value' row 4: value -5 out of range for uint32"}});
}

TEST(EncoderRowFailures, UnknownEnumNameAndNumber) {
  auto schema = arrow::schema({arrow::field("by_name", arrow::utf8()),
                               arrow::field("by_number", arrow::int8())});
  auto encoder = MakeBoundEncoder(schema, R"pb(
    name: "E"
    field { name: "by_name" number: 1 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".E.Kind" }
    field { name: "by_number" number: 2 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".E.Kind" }
    enum_type { name: "Kind" value { name: "ZERO" number: 0 } value { name: "NEG" number: -3 } }
  )pb");
  ASSERT_NE(encoder, nullptr);
  auto batch = Batch(schema, {Json(arrow::utf8(), R"(["NEG", "nope", "ZERO"])"),
                              Json(arrow::int8(), "[-3, 0, 5]")});
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{1, "column 'by_name' row 1: value 'nope' is not a name"},
                       {2, "column 'by_number' row 2: value 5 is not a number"}});
  testing::ProtoSchema proto(encoder->descriptor());
  auto m = proto.Parse(out.record(0));
  EXPECT_EQ(m->GetReflection()->GetEnumValue(*m, proto.descriptor()->FindFieldByName("by_name")), -3);
}

TEST(EncoderRowFailures, FirstReasonPerRowInFieldOrder) {
  auto schema = arrow::schema({arrow::field("a", arrow::uint64(), false),
                               arrow::field("b", arrow::uint64())});
  auto batch = Batch(schema, {Json(arrow::uint64(), "[null, 1]"),
                              Json(arrow::uint64(), "[18446744073709551615, 18446744073709551615]")});
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *batch);
  ExpectFailures(out, {{0, "column 'a' row 0: null in required field"},
                       {1, "column 'b' row 1: value 18446744073709551615"}});
}

TEST(EncoderRowFailures, OversizeRowFailsAlone) {
  auto schema = arrow::schema({arrow::field("s", arrow::utf8())});
  const std::string big(300, 'x');
  auto batch = Batch(schema, {Json(arrow::utf8(), ("[\"a\", \"" + big + "\", \"b\"]").c_str())});
  EncodeOptions options;
  options.max_request_bytes = 200;
  auto encoder = MakeEncoder(schema, options);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
  ExpectFailures(out, {{1, "row 1: row is 303 bytes, over the request limit 200"}});
  EXPECT_EQ(out.source_rows, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(Hex(out.record(1)), "0a 01 62");
}

// ----------------------------------------------------------------------------------------------
// Chunking: each chunk's whole request fits max_request_bytes, and chunks are as full as allowed.

int64_t RequestBytes(const EncodedBatch& out, RecordRange range) {
  databricks::zerobus::EphemeralStreamRequest request;
  auto* ingest = request.mutable_ingest_record_batch();
  ingest->set_offset_id(-1);  // the longest varint an offset can take
  auto* batch = ingest->mutable_proto_encoded_batch();
  for (int64_t i = range.begin; i < range.end; ++i) batch->add_records(std::string(out.record(i)));
  return static_cast<int64_t>(request.ByteSizeLong());
}

TEST(EncoderChunks, RequestsStayWithinLimit) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false), arrow::field("s", arrow::utf8())});
  arrow::Int64Builder ids;
  arrow::StringBuilder strings;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(ids.Append(i * 7919).ok());
    ASSERT_TRUE(strings.Append(std::string(static_cast<size_t>(i % 37), 'a' + i % 26)).ok());
  }
  auto batch = Batch(schema, {ids.Finish().ValueOrDie(), strings.Finish().ValueOrDie()});
  for (int64_t limit : {64, 100, 1000, 4096, 100000}) {
    EncodeOptions options;
    options.max_request_bytes = limit;
    auto encoder = MakeEncoder(schema, options);
    ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
    ASSERT_TRUE(out.failed_rows.empty()) << limit;
    ASSERT_FALSE(out.chunks.empty());
    EXPECT_EQ(out.chunks.front().begin, 0);
    EXPECT_EQ(out.chunks.back().end, out.num_records());
    for (size_t c = 0; c < out.chunks.size(); ++c) {
      const RecordRange range = out.chunks[c];
      ASSERT_LT(range.begin, range.end);
      if (c > 0) {
        EXPECT_EQ(range.begin, out.chunks[c - 1].end);
      }
      EXPECT_LE(RequestBytes(out, range), limit) << "chunk " << c << " limit " << limit;
      if (c + 1 < out.chunks.size()) {
        EXPECT_GT(RequestBytes(out, {range.begin, range.end + 1}), limit) << "chunk " << c << " not full";
      }
      // The chunk's bytes are a ProtoEncodedRecordBatch body.
      databricks::zerobus::ProtoEncodedRecordBatch parsed;
      const auto framed = out.framed(range);
      ASSERT_TRUE(parsed.ParseFromArray(framed.data(), static_cast<int>(framed.size())));
      ASSERT_EQ(parsed.records_size(), range.end - range.begin);
    }
    if (limit == 100000) {
      EXPECT_EQ(out.chunks.size(), 1u);
    }
  }
}

TEST(EncoderChunks, DefaultLimitSplitsLargeBatches) {
  auto schema = arrow::schema({arrow::field("s", arrow::binary())});
  arrow::BinaryBuilder builder;
  const std::string value(100000, 'z');
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(builder.Append(value).ok());
  auto batch = Batch(schema, {builder.Finish().ValueOrDie()});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*batch));
  ASSERT_EQ(out.num_records(), 250);
  ASSERT_EQ(out.chunks.size(), 3u);  // 25 MB over chunks below 10 MiB - 64 KiB
  for (const auto& range : out.chunks) {
    EXPECT_LE(RequestBytes(out, range), kDefaultMaxRequestBytes);
  }
}

// ----------------------------------------------------------------------------------------------
// Batch-level errors and edge cases.

TEST(EncoderErrors, ZeroColumnSchema) {
  auto result = RecordBatchEncoder::Make(arrow::schema(arrow::FieldVector{}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorKind(result.status()), ErrorKind::kConversion);
  EXPECT_THAT(result.status().message(), HasSubstr("no columns"));
}

TEST(EncoderErrors, SchemaMismatchIsConversionError) {
  auto schema = arrow::schema({arrow::field("a", arrow::int32())});
  auto other = arrow::schema({arrow::field("a", arrow::int64())});
  auto encoder = MakeEncoder(schema);
  auto result = encoder->Encode(*Batch(other, {Json(arrow::int64(), "[1]")}));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorKind(result.status()), ErrorKind::kConversion);
  EXPECT_THAT(result.status().message(), HasSubstr("does not match"));
}

TEST(EncoderErrors, RequestLimitTooSmall) {
  EncodeOptions options;
  options.max_request_bytes = 10;
  auto result = RecordBatchEncoder::Make(arrow::schema({arrow::field("a", arrow::int32())}), options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorKind(result.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(result.status().message(), HasSubstr("max_request_bytes"));
}

TEST(EncoderErrors, RequestLimitTooLarge) {
  EncodeOptions options;
  options.max_request_bytes = int64_t{1} << 40;
  auto result = RecordBatchEncoder::Make(arrow::schema({arrow::field("a", arrow::int32())}), options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorKind(result.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(result.status().message(), HasSubstr("2 GiB"));
}

TEST(EncoderRowFailures, InvalidDictionaryIndexAndRunEnds) {
  // Invalid Arrow data (unvalidated): rows fail, nothing is read out of bounds.
  auto dict_type = arrow::dictionary(arrow::int8(), arrow::utf8());
  auto dict = std::make_shared<arrow::DictionaryArray>(
      dict_type, Json(arrow::int8(), "[0, 5, 1, 0, -3]"), Json(arrow::utf8(), R"(["a", "b"])"));
  auto ree_type = arrow::run_end_encoded(arrow::int32(), arrow::int64());
  // Runs cover positions 0..2 only, the array claims 5 (RunEndEncodedArray::Make would refuse).
  auto ree = arrow::MakeArray(arrow::ArrayData::Make(
      ree_type, 5, {nullptr},
      {Json(arrow::int32(), "[1, 3]")->data(), Json(arrow::int64(), "[10, 20]")->data()}, 0));
  auto schema = arrow::schema({arrow::field("d", dict_type), arrow::field("r", ree_type)});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*Batch(schema, {dict, ree})));
  ExpectFailures(out, {{1, "column 'd' row 1: dictionary index 5 out of range for a dictionary of 2 values"},
                       {3, "column 'r' row 3: run-end encoded position 3 is past the last run"},
                       {4, "column 'd' row 4: dictionary index"}});
  EXPECT_EQ(out.source_rows, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(Hex(out.record(0)), "0a 01 61 10 0a");
  EXPECT_EQ(Hex(out.record(1)), "0a 01 62 10 14");
}

TEST(EncoderErrors, UnsupportedTypeNamesColumn) {
  auto result = RecordBatchEncoder::Make(arrow::schema({arrow::field("t", arrow::time32(arrow::TimeUnit::SECOND))}));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("'t'"));
}

TEST(EncoderEdge, EmptyBatch) {
  auto schema = arrow::schema({arrow::field("a", arrow::int32()), arrow::field("l", arrow::list(arrow::utf8()))});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch out, encoder->Encode(*Batch(schema, {Json(arrow::int32(), "[]"), Json(arrow::list(arrow::utf8()), "[]")})));
  EXPECT_EQ(out.num_records(), 0);
  EXPECT_TRUE(out.chunks.empty());
  EXPECT_TRUE(out.failed_rows.empty());
  EXPECT_EQ(out.record_offsets, (std::vector<int64_t>{0}));
  EXPECT_EQ(out.buffer->size(), 0);
}

TEST(EncoderEdge, AllNullArraysWithoutValueBuffers) {
  // MakeArrayOfNull may share or omit value buffers; nothing may be read from them.
  auto item = arrow::struct_({arrow::field("x", arrow::int32())});
  auto schema = arrow::schema({arrow::field("b", arrow::boolean()), arrow::field("d", arrow::decimal128(10, 2)),
                               arrow::field("s", arrow::utf8()), arrow::field("l", arrow::list(item)),
                               arrow::field("m", arrow::map(arrow::utf8(), arrow::int64()))});
  std::vector<std::shared_ptr<arrow::Array>> columns;
  for (const auto& f : schema->fields()) columns.push_back(arrow::MakeArrayOfNull(f->type(), 1000).ValueOrDie());
  auto encoder = MakeEncoder(schema);
  auto out = EncodeAndVerify(*encoder, *Batch(schema, columns));
  ASSERT_EQ(out.num_records(), 1000);
  EXPECT_EQ(out.record(999), "");
}

TEST(EncoderEdge, SlicedBatchMatchesUnsliced) {
  auto item = arrow::struct_({arrow::field("x", arrow::int32()), arrow::field("y", arrow::utf8())});
  auto schema = arrow::schema({arrow::field("i", arrow::int64()), arrow::field("l", arrow::list(item))});
  auto batch = Batch(schema, {Json(arrow::int64(), "[1, 2, 3, null, 5]"),
                              Json(arrow::list(item), R"([[{"x": 1, "y": "a"}], null, [{"x": null, "y": "bb"}, {"x": 3, "y": null}], [], [{"x": 5, "y": "e"}]])")});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch full, encoder->Encode(*batch));
  auto sliced = batch->Slice(2, 3);
  auto out = EncodeAndVerify(*encoder, *sliced);
  ASSERT_EQ(out.num_records(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out.record(i), full.record(i + 2));
}

TEST(EncoderEdge, ConcurrentEncodesAgree) {
  auto schema = arrow::schema({arrow::field("a", arrow::int64()), arrow::field("m", arrow::map(arrow::utf8(), arrow::float64()))});
  auto batch = Batch(schema, {Json(arrow::int64(), "[1, 2, null]"),
                              Json(arrow::map(arrow::utf8(), arrow::float64()), R"([[["a", 1.0]], null, [["b", null], ["c", 2.5]]])")});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedBatch expected, encoder->Encode(*batch));
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) {
        auto out = encoder->Encode(*batch);
        if (!out.ok()) return;
        results[t] = std::string(out->framed(out->chunks[0]));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, expected.framed(expected.chunks[0]));
}

}  // namespace
}  // namespace arrow_zerobus
