// The emulator's record decoders: round trip from the project's encoder, libprotobuf-serialized
// records of every proto scalar type, every malformed-input error, and JSON records.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/util/decimal.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/schema.h"
#include "decode/record_decoder.h"
#include "emulator/store/store_test_util.h"

namespace arrow_zerobus::emulator {
namespace {

using ::testing::HasSubstr;
using testing::ArrayFromJson;
using testing::Declared;
using testing::ParseDescriptor;
using testing::Views;
using testing::Wire;
using testing::ZigZag;
namespace pb = google::protobuf;

void ExpectColumnsEqual(const arrow::RecordBatch& actual, const arrow::RecordBatch& expected) {
  ASSERT_EQ(actual.num_columns(), expected.num_columns());
  ASSERT_EQ(actual.num_rows(), expected.num_rows());
  for (int i = 0; i < expected.num_columns(); ++i) {
    EXPECT_TRUE(actual.column(i)->Equals(*expected.column(i)))
        << "column " << expected.schema()->field(i)->name() << "\nactual:   "
        << actual.column(i)->ToString() << "\nexpected: " << expected.column(i)->ToString();
  }
  ASSERT_OK(actual.ValidateFull());
}

std::shared_ptr<arrow::Schema> KitchenSinkSchema() {
  return arrow::schema({
      arrow::field("id", arrow::int64(), false),
      arrow::field("i8", arrow::int8()),
      arrow::field("i16", arrow::int16()),
      arrow::field("i32", arrow::int32()),
      arrow::field("f32", arrow::float32()),
      arrow::field("f64", arrow::float64()),
      arrow::field("flag", arrow::boolean()),
      arrow::field("s", arrow::utf8()),
      arrow::field("bin", arrow::binary()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("ntz", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("dec", arrow::decimal128(12, 3)),
      arrow::field("nums", arrow::list(arrow::field("element", arrow::int32()))),
      arrow::field("st", arrow::struct_({arrow::field("a", arrow::int32(), false),
                                         arrow::field("b", arrow::utf8())})),
      arrow::field("m", arrow::map(arrow::utf8(), arrow::field("value", arrow::int64()))),
      arrow::field("pts", arrow::list(arrow::field(
                              "element", arrow::struct_({arrow::field("x", arrow::float64()),
                                                         arrow::field("y", arrow::utf8())})))),
  });
}

std::shared_ptr<arrow::RecordBatch> KitchenSinkBatch() {
  auto schema = KitchenSinkSchema();
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      ArrayFromJson(arrow::int64(), "[1, -2, 9223372036854775807, 0]"),
      ArrayFromJson(arrow::int8(), "[-128, 127, null, 0]"),
      ArrayFromJson(arrow::int16(), "[-32768, 32767, null, 5]"),
      ArrayFromJson(arrow::int32(), "[-2147483648, 2147483647, 7, null]"),
      ArrayFromJson(arrow::float32(), "[1.5, -0.25, null, 3.0e10]"),
      ArrayFromJson(arrow::float64(), "[3.141592653589793, null, -1e300, 0.0]"),
      ArrayFromJson(arrow::boolean(), "[true, false, null, true]"),
      ArrayFromJson(arrow::utf8(), R"(["héllo", "", null, "日本語"])"),
      ArrayFromJson(arrow::binary(), R"(["\u0000\u0001", null, "", "xyz"])"),
      ArrayFromJson(arrow::date32(), "[0, -719162, 2932896, null]"),
      ArrayFromJson(schema->field(10)->type(), "[1700000000123456, -1, null, 0]"),
      ArrayFromJson(schema->field(11)->type(), "[null, 86400000000, -62135596800000000, 5]"),
      ArrayFromJson(schema->field(12)->type(), R"(["123456789.123", "-0.001", null, "0.000"])"),
      ArrayFromJson(schema->field(13)->type(), "[[1, 2, 3], [], [-5], [2147483647]]"),
      ArrayFromJson(schema->field(14)->type(),
                    R"([{"a": 1, "b": "x"}, null, {"a": -3, "b": null}, {"a": 0, "b": ""}])"),
      ArrayFromJson(schema->field(15)->type(),
                    R"([[["k1", 1], ["k2", null]], [], [["z", 0]], [["", -9]]])"),
      ArrayFromJson(schema->field(16)->type(),
                    R"([[{"x": 1.0, "y": "a"}, {"x": null, "y": null}], [], [{"x": 2.5, "y": "b"}], []])"),
  };
  return arrow::RecordBatch::Make(schema, 4, columns);
}

TEST(ProtoDecoder, RoundTripFromProjectEncoder) {
  auto batch = KitchenSinkBatch();
  ASSERT_OK_AND_ASSIGN(auto encoder, RecordBatchEncoder::Make(batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto encoded, encoder->Encode(*batch));
  ASSERT_TRUE(encoded.failed_rows.empty()) << encoded.failed_rows[0].message;
  std::vector<std::string_view> records;
  for (int64_t i = 0; i < encoded.num_records(); ++i) records.push_back(encoded.record(i));

  ASSERT_OK_AND_ASSIGN(auto table_schema, NormalizeTableSchema(*batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(encoder->descriptor(), table_schema));
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(records));
  ExpectColumnsEqual(*decoded, *batch);

  // The decoder is reusable: a second batch decodes the same (no leftovers).
  ASSERT_OK_AND_ASSIGN(auto again, decoder->Decode(records));
  ExpectColumnsEqual(*again, *batch);
  // A table created from the descriptor accepts the same records.
  ASSERT_OK_AND_ASSIGN(auto derived, SchemaFromDescriptor(encoder->descriptor()));
  ASSERT_OK_AND_ASSIGN(auto decoder2, RecordDecoder::MakeProto(encoder->descriptor(), derived));
  ASSERT_OK_AND_ASSIGN(auto decoded2, decoder2->Decode(records));
  EXPECT_EQ(decoded2->num_rows(), 4);
  EXPECT_EQ(decoded2->column(0)->ToString(), batch->column(0)->ToString());
}

TEST(ProtoDecoder, RoundTripIntoTableDeclaredFromProjectSchemaTools) {
  // The table a user declares with the project's own DeltaColumnsFromArrowSchema /
  // TableDeclarationJson accepts the project's descriptor and decodes to the same values.
  auto batch = KitchenSinkBatch();
  ASSERT_OK_AND_ASSIGN(auto columns, DeltaColumnsFromArrowSchema(*batch->schema()));
  ASSERT_OK_AND_ASSIGN(auto declared, SchemaFromDeclaration(TableDeclarationJson(columns)));
  ASSERT_OK_AND_ASSIGN(auto encoder, RecordBatchEncoder::Make(batch->schema()));
  ASSERT_OK(CheckDescriptorAgainstSchema(encoder->descriptor(), *declared));
  ASSERT_OK_AND_ASSIGN(auto encoded, encoder->Encode(*batch));
  std::vector<std::string_view> records;
  for (int64_t i = 0; i < encoded.num_records(); ++i) records.push_back(encoded.record(i));
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(encoder->descriptor(), declared));
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(records));
  ASSERT_OK(decoded->ValidateFull());
  for (int i = 0; i < batch->num_columns(); ++i) {
    // Declared nested types may be nullable where the source said NOT NULL (array elements, map
    // values); the values are the same.
    if (decoded->column(i)->type()->Equals(batch->column(i)->type())) {
      EXPECT_TRUE(decoded->column(i)->Equals(*batch->column(i))) << batch->schema()->field(i)->name();
    } else {
      EXPECT_EQ(decoded->column(i)->ToString(), batch->column(i)->ToString()) << batch->schema()->field(i)->name();
    }
  }
}

TEST(ProtoDecoder, NullListDecodesAsEmptyList) {
  // Proto has no presence for repeated fields: the encoder writes a null list as nothing.
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("nums", arrow::list(arrow::field("element", arrow::int32())))});
  auto batch = arrow::RecordBatch::Make(
      schema, 2, {ArrayFromJson(arrow::int64(), "[1, 2]"), ArrayFromJson(schema->field(1)->type(), "[null, [4]]")});
  ASSERT_OK_AND_ASSIGN(auto encoder, RecordBatchEncoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(auto encoded, encoder->Encode(*batch));
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(encoder->descriptor(), schema));
  std::vector<std::string_view> records{encoded.record(0), encoded.record(1)};
  ASSERT_OK_AND_ASSIGN(auto decoded, decoder->Decode(records));
  EXPECT_TRUE(decoded->column(1)->Equals(*ArrayFromJson(schema->field(1)->type(), "[[], [4]]")))
      << decoded->column(1)->ToString();
}

// Serializes messages with libprotobuf's DynamicMessage (an independent encoder).
class DynamicRecords {
 public:
  explicit DynamicRecords(const DescriptorProto& message) {
    pb::FileDescriptorProto file;
    file.set_name("dyn.proto");
    file.set_package("pkg");
    *file.add_message_type() = message;
    const pb::FileDescriptor* built = pool_.BuildFile(file);
    EXPECT_NE(built, nullptr);
    descriptor_ = built->message_type(0);
  }
  std::unique_ptr<pb::Message> New() { return std::unique_ptr<pb::Message>(factory_.GetPrototype(descriptor_)->New()); }
  const pb::Descriptor* descriptor() const { return descriptor_; }

 private:
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
  const pb::Descriptor* descriptor_ = nullptr;
};

constexpr const char* kAllScalars = R"pb(
  name: "R"
  field { name: "s32" number: 1 label: LABEL_OPTIONAL type: TYPE_SINT32 }
  field { name: "s64" number: 2 label: LABEL_OPTIONAL type: TYPE_SINT64 }
  field { name: "f32" number: 3 label: LABEL_OPTIONAL type: TYPE_FIXED32 }
  field { name: "f64" number: 4 label: LABEL_OPTIONAL type: TYPE_FIXED64 }
  field { name: "sf32" number: 5 label: LABEL_OPTIONAL type: TYPE_SFIXED32 }
  field { name: "sf64" number: 6 label: LABEL_OPTIONAL type: TYPE_SFIXED64 }
  field { name: "u32" number: 7 label: LABEL_OPTIONAL type: TYPE_UINT32 }
  field { name: "u64" number: 8 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "kind" number: 9 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".pkg.R.Kind" }
  field { name: "kind_num" number: 10 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: "Kind" }
  field { name: "fl" number: 11 label: LABEL_OPTIONAL type: TYPE_FLOAT }
  field { name: "txt" number: 12 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "unpacked" number: 13 label: LABEL_REPEATED type: TYPE_SINT64 }
  field { name: "packed" number: 14 label: LABEL_REPEATED type: TYPE_DOUBLE options { packed: true } }
  field { name: "i32" number: 15 label: LABEL_OPTIONAL type: TYPE_INT32 }
  enum_type { name: "Kind" value { name: "ZERO" number: 0 } value { name: "MINUS" number: -3 } value { name: "BIG" number: 1000 } }
)pb";

TEST(ProtoDecoder, EveryProtoScalarTypeFromLibprotobuf) {
  auto descriptor = ParseDescriptor(kAllScalars);
  auto table = Declared(R"j({"name": "s32", "type": "int"}, {"name": "s64", "type": "bigint"},
      {"name": "f32", "type": "bigint"}, {"name": "f64", "type": "bigint"},
      {"name": "sf32", "type": "smallint"}, {"name": "sf64", "type": "timestamp"},
      {"name": "u32", "type": "bigint"}, {"name": "u64", "type": "bigint"},
      {"name": "kind", "type": "string"}, {"name": "kind_num", "type": "int"},
      {"name": "fl", "type": "double"}, {"name": "txt", "type": "binary"},
      {"name": "unpacked", "type": "array<bigint>"}, {"name": "packed", "type": "array<double>"},
      {"name": "i32", "type": "date"}, {"name": "extra", "type": "string"})j");
  DynamicRecords dyn(descriptor);
  const pb::Descriptor* d = dyn.descriptor();
  std::vector<std::string> records;
  {
    auto m = dyn.New();
    const pb::Reflection* r = m->GetReflection();
    r->SetInt32(m.get(), d->FindFieldByName("s32"), -5);
    r->SetInt64(m.get(), d->FindFieldByName("s64"), INT64_MIN);
    r->SetUInt32(m.get(), d->FindFieldByName("f32"), 4000000000u);
    r->SetUInt64(m.get(), d->FindFieldByName("f64"), 123);
    r->SetInt32(m.get(), d->FindFieldByName("sf32"), -300);
    r->SetInt64(m.get(), d->FindFieldByName("sf64"), -1700000000000000);
    r->SetUInt32(m.get(), d->FindFieldByName("u32"), 4294967295u);
    r->SetUInt64(m.get(), d->FindFieldByName("u64"), 9223372036854775807ull);
    r->SetEnumValue(m.get(), d->FindFieldByName("kind"), -3);
    r->SetEnumValue(m.get(), d->FindFieldByName("kind_num"), 1000);
    r->SetFloat(m.get(), d->FindFieldByName("fl"), 0.5f);
    r->SetString(m.get(), d->FindFieldByName("txt"), std::string("a\0b", 3));
    r->AddInt64(m.get(), d->FindFieldByName("unpacked"), -1);
    r->AddInt64(m.get(), d->FindFieldByName("unpacked"), 2);
    r->AddDouble(m.get(), d->FindFieldByName("packed"), 1.25);
    r->AddDouble(m.get(), d->FindFieldByName("packed"), -2.5);
    r->SetInt32(m.get(), d->FindFieldByName("i32"), 19000);
    records.push_back(m->SerializeAsString());
  }
  records.push_back(dyn.New()->SerializeAsString());  // every field absent
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(descriptor, table));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(records)));
  auto expected = arrow::RecordBatch::Make(
      table, 2,
      {ArrayFromJson(arrow::int32(), "[-5, null]"),
       ArrayFromJson(arrow::int64(), "[-9223372036854775808, null]"),
       ArrayFromJson(arrow::int64(), "[4000000000, null]"),
       ArrayFromJson(arrow::int64(), "[123, null]"),
       ArrayFromJson(arrow::int16(), "[-300, null]"),
       ArrayFromJson(table->field(5)->type(), "[-1700000000000000, null]"),
       ArrayFromJson(arrow::int64(), "[4294967295, null]"),
       ArrayFromJson(arrow::int64(), "[9223372036854775807, null]"),
       ArrayFromJson(arrow::utf8(), R"(["MINUS", null])"),
       ArrayFromJson(arrow::int32(), "[1000, null]"),
       ArrayFromJson(arrow::float64(), "[0.5, null]"),
       ArrayFromJson(arrow::binary(), R"(["a\u0000b", null])"),
       ArrayFromJson(table->field(12)->type(), "[[-1, 2], []]"),
       ArrayFromJson(table->field(13)->type(), "[[1.25, -2.5], []]"),
       ArrayFromJson(arrow::date32(), "[19000, null]"),
       ArrayFromJson(arrow::utf8(), "[null, null]")});
  ExpectColumnsEqual(*batch, *expected);
}

TEST(ProtoDecoder, PackedAndUnpackedBothAcceptedAndLastSingularWins) {
  auto descriptor = ParseDescriptor(R"pb(name: "R"
    field { name: "v" number: 1 label: LABEL_REPEATED type: TYPE_INT32 }
    field { name: "x" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 })pb");
  auto table = Declared(R"j({"name": "v", "type": "array<int>"}, {"name": "x", "type": "bigint"})j");
  Wire packed_payload;
  packed_payload.Varint(3).Varint(0).Varint(300);
  std::vector<std::string> records = {
      Wire().VarintField(1, 1).BytesField(1, packed_payload.str()).VarintField(1, 7)
          .VarintField(2, 10).VarintField(2, 11),
  };
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(descriptor, table));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(records)));
  EXPECT_EQ(batch->column(0)->ToString(), ArrayFromJson(table->field(0)->type(), "[[1, 3, 0, 300, 7]]")->ToString());
  EXPECT_EQ(batch->column(1)->ToString(), ArrayFromJson(arrow::int64(), "[11]")->ToString());
}

TEST(ProtoDecoder, MapEntriesWithMissingKeyOrValue) {
  auto descriptor = ParseDescriptor(R"pb(name: "R"
    field { name: "m" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "MEntry" }
    nested_type { name: "MEntry" options { map_entry: true }
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 } })pb");
  auto table = Declared(R"j({"name": "m", "type": "map<string,bigint>"})j");
  std::string e1 = Wire().BytesField(1, "a").VarintField(2, 5);
  std::string e2 = Wire().VarintField(2, 6);  // no key: ""
  std::string e3 = Wire().BytesField(1, "c");  // no value: NULL (nullable values)
  std::vector<std::string> records = {
      Wire().BytesField(1, e1).BytesField(1, e2).BytesField(1, e3), std::string()};
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(descriptor, table));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(records)));
  auto expected = ArrayFromJson(table->field(0)->type(), R"([[["a", 5], ["", 6], ["c", null]], []])");
  EXPECT_TRUE(batch->column(0)->Equals(*expected)) << batch->column(0)->ToString();
}

TEST(ProtoDecoder, EmptySpanGivesEmptyBatch) {
  auto descriptor = ParseDescriptor(R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 })pb");
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(descriptor, Declared(R"j({"name": "a", "type": "bigint"})j")));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode({}));
  EXPECT_EQ(batch->num_rows(), 0);
  ASSERT_OK(batch->ValidateFull());
}

TEST(ProtoDecoder, MakeRefusesMismatchedDescriptor) {
  auto descriptor = ParseDescriptor(R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING })pb");
  auto result = RecordDecoder::MakeProto(descriptor, Declared(R"j({"name": "a", "type": "bigint"})j"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ToStatusCode(result.status()), StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("descriptor field 'a' (#1) has type string"));
}

constexpr const char* kMalformedDescriptor = R"pb(
  name: "R"
  field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
  field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "val" number: 3 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field { name: "small" number: 4 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "dec" number: 5 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "kind" number: 6 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: "K" }
  field { name: "nums" number: 7 label: LABEL_REPEATED type: TYPE_INT32 }
  field { name: "sub" number: 8 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Sub" }
  field { name: "big" number: 9 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "f" number: 10 label: LABEL_OPTIONAL type: TYPE_FLOAT }
  nested_type { name: "Sub" field { name: "a" number: 1 label: LABEL_REQUIRED type: TYPE_INT32 } }
  enum_type { name: "K" value { name: "X" number: 1 } }
)pb";

std::shared_ptr<arrow::Schema> MalformedTable() {
  return Declared(R"j({"name": "id", "type": "bigint", "nullable": false},
      {"name": "name", "type": "string"}, {"name": "val", "type": "double"},
      {"name": "small", "type": "tinyint"}, {"name": "dec", "type": "decimal(5,2)"},
      {"name": "kind", "type": "string"}, {"name": "nums", "type": "array<int>"},
      {"name": "sub", "type": "struct<a:int not null>"}, {"name": "big", "type": "bigint"},
      {"name": "f", "type": "float"})j");
}

TEST(ProtoDecoder, EveryMalformedInputIsNamed) {
  const std::string id = Wire().VarintField(1, 1);  // makes a record valid so far
  struct Case {
    std::string record;
    std::string message;
  } cases[] = {
      {"", "field 'id' (#1): required field is missing"},
      {"\x80", "malformed varint in a field tag at byte 0"},
      {Wire().Tag(1, 0).Raw(std::string(10, '\xff')).Raw("\x01"), "field 'id' (#1): malformed varint at byte 0"},
      {Wire().Tag(1, 0).Raw("\xff\xff"), "field 'id' (#1): malformed varint at byte 0"},
      {id + Wire().VarintField(99, 1).str(), "unknown field number 99 (wire type varint) at byte 2"},
      {Wire().Fixed64Field(1, 5), "field 'id' (#1): wrong wire type 1 (64-bit), expected varint for int64 at byte 0"},
      {id + Wire().Tag(2, 2).Varint(10).Raw("ab").str(),
       "field 'name' (#2): length 10 runs past the end of the record at byte 2"},
      {id + Wire().Tag(2, 2).Raw("\x80").str(), "field 'name' (#2): malformed length varint"},
      {id + Wire().Tag(3, 1).Raw("abc").str(), "field 'val' (#3): truncated 64-bit value at byte 2"},
      {id + Wire().Tag(10, 5).Raw("ab").str(), "field 'f' (#10): truncated 32-bit value"},
      {id + Wire().Tag(2, 3).str(), "field 'name' (#2): wire type 3 (start-group) is not supported"},
      {id + Wire().Tag(2, 7).str(), "wire type 7 (invalid) is not supported"},
      {Wire().Tag(0, 0).Varint(1), "field number 0 at byte 0"},
      {id + Wire().VarintField(4, 300).str(), "field 'small' (#4): value 300 out of range for column type int8"},
      {id + Wire().VarintField(4, static_cast<uint64_t>(-200)).str(), "value -200 out of range"},
      {id + Wire().BytesField(5, "12.3.4").str(), "field 'dec' (#5): '12.3.4' is not decimal text"},
      {id + Wire().BytesField(5, "1.234").str(), "decimal text '1.234' has more than 2 digits after the point"},
      {id + Wire().BytesField(5, "1234.5").str(), "decimal text '1234.5' does not fit decimal(5,2)"},
      {id + Wire().BytesField(5, "").str(), "'' is not decimal text"},
      {id + Wire().VarintField(6, 7).str(), "field 'kind' (#6): unknown enum number 7"},
      {id + Wire().BytesField(2, "\xff\xfe").str(), "field 'name' (#2): string is not valid UTF-8"},
      {id + Wire().VarintField(9, 1ull << 63).str(), "field 'big' (#9): value 9223372036854775808 does not fit a bigint"},
      {id + Wire().BytesField(7, "\x80\x80").str(), "field 'nums' (#7): malformed varint in packed field"},
      {id + Wire().Fixed32Field(7, 1).str(), "field 'nums' (#7): wrong wire type 5 (32-bit), expected varint for int32"},
      {id + Wire().BytesField(8, "").str(), "field 'sub.a' (#1): required field is missing"},
      {id + Wire().BytesField(8, Wire().BytesField(1, "x")).str(),
       "field 'sub.a' (#1): wrong wire type 2 (length-delimited), expected varint for int32"},
      {id + Wire().BytesField(8, Wire().VarintField(5, 1)).str(), "unknown field number 5 (wire type varint) at byte 4 in message 'sub'"},
      {id + Wire().Tag(3, 0).Varint(1).str(), "field 'val' (#3): wrong wire type 0 (varint), expected 64-bit for double"},
  };
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(ParseDescriptor(kMalformedDescriptor), MalformedTable()));
  for (const auto& c : cases) {
    std::vector<std::string> records = {id, id, c.record};
    auto result = decoder->Decode(Views(records));
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(ToStatusCode(result.status()), StatusCode::kInvalidArgument);
    EXPECT_THAT(result.status().message(), ::testing::StartsWith("record 2: "));
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
  // After all those failures the decoder still decodes good records, with no leftovers.
  std::vector<std::string> good = {id, Wire().VarintField(1, 2).BytesField(2, "n").VarintField(4, 100)
                                           .BytesField(5, "-999.99").VarintField(6, 1)
                                           .BytesField(8, Wire().VarintField(1, 3))};
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(good)));
  ASSERT_OK(batch->ValidateFull());
  ASSERT_EQ(batch->num_rows(), 2);
  EXPECT_EQ(batch->column(0)->ToString(), ArrayFromJson(arrow::int64(), "[1, 2]")->ToString());
  EXPECT_EQ(batch->column(3)->ToString(), ArrayFromJson(arrow::int8(), "[null, 100]")->ToString());
  EXPECT_EQ(batch->column(4)->ToString(),
            ArrayFromJson(arrow::decimal128(5, 2), R"([null, "-999.99"])")->ToString());
  EXPECT_EQ(batch->column(5)->ToString(), ArrayFromJson(arrow::utf8(), R"([null, "X"])")->ToString());
  EXPECT_TRUE(batch->column(7)->Equals(*ArrayFromJson(MalformedTable()->field(7)->type(), R"([null, {"a": 3}])")))
      << batch->column(7)->ToString();
}

TEST(ProtoDecoder, NestingDepthIsBounded) {
  auto descriptor = ParseDescriptor(R"pb(name: "R"
    field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "A" }
    nested_type { name: "A" field { name: "b" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "B" }
      nested_type { name: "B" field { name: "c" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 } } })pb");
  auto table = Declared(R"j({"name": "a", "type": "struct<b:struct<c:int>>"})j");
  DecoderOptions options;
  options.max_depth = 1;
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeProto(descriptor, table, options));
  std::vector<std::string> records = {Wire().BytesField(1, Wire().BytesField(1, Wire().VarintField(1, 5)))};
  auto result = decoder->Decode(Views(records));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("record 0: message nesting deeper than 1"));
  options.max_depth = 100;
  ASSERT_OK_AND_ASSIGN(decoder, RecordDecoder::MakeProto(descriptor, table, options));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(records)));
  EXPECT_EQ(batch->column(0)->ToString(), ArrayFromJson(table->field(0)->type(), R"([{"b": {"c": 5}}])")->ToString());
}

// --- JSON ---------------------------------------------------------------------------------------

TEST(JsonDecoder, AllTypes) {
  auto table = Declared(R"j({"name": "id", "type": "bigint", "nullable": false},
      {"name": "i8", "type": "tinyint"}, {"name": "flag", "type": "boolean"},
      {"name": "f", "type": "float"}, {"name": "d", "type": "double"},
      {"name": "s", "type": "string"}, {"name": "bin", "type": "binary"},
      {"name": "day", "type": "date"}, {"name": "ts", "type": "timestamp"},
      {"name": "ntz", "type": "timestamp_ntz"}, {"name": "dec", "type": "decimal(10,2)"},
      {"name": "arr", "type": "array<int>"}, {"name": "st", "type": "struct<a:int,b:string>"},
      {"name": "m", "type": "map<string,int>"}, {"name": "mi", "type": "map<int,string>"})j");
  std::vector<std::string> records = {
      R"j({"id": 1, "i8": -5, "flag": true, "f": 1.5, "d": "NaN", "s": "héllo", "bin": "AAEC",
          "day": "2024-02-29", "ts": "2024-01-02T03:04:05.123456+01:00", "ntz": "1970-01-01 00:00:01",
          "dec": "12.5", "arr": [1, 2], "st": {"a": 7}, "m": {"x": 1, "y": null},
          "mi": [{"key": 3, "value": "three"}]})j",
      R"j({"id": "9223372036854775807", "day": 19000, "ts": 1700000000000000, "dec": 3, "arr": [],
          "ntz": "2000-01-01T00:00:00.5", "d": -1e300})j",
  };
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeJson(table));
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(records)));
  ASSERT_OK(batch->ValidateFull());
  EXPECT_EQ(batch->column(0)->ToString(), ArrayFromJson(arrow::int64(), "[1, 9223372036854775807]")->ToString());
  EXPECT_EQ(batch->column(1)->ToString(), ArrayFromJson(arrow::int8(), "[-5, null]")->ToString());
  EXPECT_EQ(batch->column(2)->ToString(), ArrayFromJson(arrow::boolean(), "[true, null]")->ToString());
  EXPECT_EQ(batch->column(3)->ToString(), ArrayFromJson(arrow::float32(), "[1.5, null]")->ToString());
  auto d = std::static_pointer_cast<arrow::DoubleArray>(batch->column(4));
  EXPECT_TRUE(std::isnan(d->Value(0)));
  EXPECT_EQ(d->Value(1), -1e300);
  EXPECT_EQ(batch->column(5)->ToString(), ArrayFromJson(arrow::utf8(), R"(["héllo", null])")->ToString());
  EXPECT_EQ(batch->column(6)->ToString(), ArrayFromJson(arrow::binary(), R"(["\u0000\u0001\u0002", null])")->ToString());
  EXPECT_EQ(batch->column(7)->ToString(), ArrayFromJson(arrow::date32(), "[19782, 19000]")->ToString());
  // 2024-01-02T02:04:05.123456Z
  EXPECT_EQ(batch->column(8)->ToString(),
            ArrayFromJson(table->field(8)->type(), "[1704161045123456, 1700000000000000]")->ToString());
  EXPECT_EQ(batch->column(9)->ToString(),
            ArrayFromJson(table->field(9)->type(), "[1000000, 946684800500000]")->ToString());
  EXPECT_EQ(batch->column(10)->ToString(),
            ArrayFromJson(arrow::decimal128(10, 2), R"(["12.50", "3.00"])")->ToString());
  EXPECT_EQ(batch->column(11)->ToString(), ArrayFromJson(table->field(11)->type(), "[[1, 2], []]")->ToString());
  EXPECT_TRUE(batch->column(12)->Equals(
      *ArrayFromJson(table->field(12)->type(), R"([{"a": 7, "b": null}, null])")))
      << batch->column(12)->ToString();
  EXPECT_EQ(batch->column(13)->ToString(),
            ArrayFromJson(table->field(13)->type(), R"([[["x", 1], ["y", null]], null])")->ToString());
  EXPECT_EQ(batch->column(14)->ToString(),
            ArrayFromJson(table->field(14)->type(), R"([[[3, "three"]], null])")->ToString());
}

TEST(JsonDecoder, ErrorsNameRecordAndColumn) {
  auto table = Declared(R"j({"name": "id", "type": "bigint", "nullable": false},
      {"name": "i8", "type": "tinyint"}, {"name": "ts", "type": "timestamp"},
      {"name": "ntz", "type": "timestamp_ntz"}, {"name": "bin", "type": "binary"},
      {"name": "dec", "type": "decimal(4,1)"}, {"name": "arr", "type": "array<int>"},
      {"name": "st", "type": "struct<a:int not null>"}, {"name": "day", "type": "date"},
      {"name": "flag", "type": "boolean"})j");
  struct Case {
    const char* record;
    const char* message;
  } cases[] = {
      {"{", "not valid JSON"},
      {"[1]", "a JSON record must be an object, got [1]"},
      {R"({"id": 1, "nope": 2})", "unknown column 'nope'"},
      {R"({"i8": 1})", "column 'id': NOT NULL column has no value"},
      {R"({"id": null})", "column 'id': NOT NULL column has no value"},
      {R"({"id": "x"})", "column 'id': expected an integer, got \"x\""},
      {R"({"id": 1.5})", "column 'id': expected an integer, got 1.5"},
      {R"({"id": 1, "i8": 200})", "column 'i8': value 200 out of range"},
      {R"({"id": 1, "ts": "2024-13-01"})", "column 'ts': expected microseconds or an ISO-8601 timestamp"},
      {R"({"id": 1, "ntz": "2024-01-01T00:00:00Z"})", "ISO-8601 timestamp without time zone"},
      {R"({"id": 1, "bin": "@@"})", "column 'bin': expected base64 text"},
      {R"({"id": 1, "dec": "1234.5"})", "column 'dec': decimal text '1234.5' does not fit decimal(4,1)"},
      {R"({"id": 1, "dec": true})", "column 'dec': expected decimal text or a number"},
      {R"({"id": 1, "arr": [1, null]})", "column 'arr': array element is null but elements are NOT NULL"},
      {R"({"id": 1, "arr": 5})", "column 'arr': expected an array, got 5"},
      {R"({"id": 1, "st": {}})", "column 'st.a': NOT NULL column has no value"},
      {R"({"id": 1, "st": {"b": 1}})", "unknown column 'st.b'"},
      {R"({"id": 1, "day": "2023-02-29"})", "column 'day': expected a date YYYY-MM-DD"},
      {R"({"id": 1, "flag": 1})", "column 'flag': expected true/false, got 1"},
  };
  // array<int> from type text has nullable elements; make them NOT NULL for the null-element case.
  auto fields = table->fields();
  fields[6] = arrow::field("arr", arrow::list(arrow::field("element", arrow::int32(), false)));
  auto strict_table = arrow::schema(fields);
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeJson(strict_table));
  for (const auto& c : cases) {
    std::vector<std::string> records = {R"({"id": 1})", c.record};
    auto result = decoder->Decode(Views(records));
    ASSERT_FALSE(result.ok()) << c.record;
    EXPECT_EQ(ToStatusCode(result.status()), StatusCode::kInvalidArgument);
    EXPECT_THAT(result.status().message(), ::testing::StartsWith("record 1: ")) << c.record;
    EXPECT_THAT(result.status().message(), HasSubstr(c.message)) << c.record;
  }
  std::vector<std::string> good = {R"({"id": 5})"};
  ASSERT_OK_AND_ASSIGN(auto batch, decoder->Decode(Views(good)));
  EXPECT_EQ(batch->num_rows(), 1);
  ASSERT_OK(batch->ValidateFull());
}

// A record nested 100k levels deep (200 KB, under the request limit) is refused with a message
// that describes it; building that message once recursed per level and overflowed the stack.
TEST(JsonDecoder, DeeplyNestedRecordIsRefusedWithoutRecursion) {
  auto table = arrow::schema({arrow::field("id", arrow::int64())});
  ASSERT_OK_AND_ASSIGN(auto decoder, RecordDecoder::MakeJson(table));
  const size_t n = 100'000;
  std::vector<std::string> records = {std::string(n, '[') + std::string(n, ']')};
  auto result = decoder->Decode(Views(records));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("an array nested 64 or more levels deep"));
}

}  // namespace
}  // namespace arrow_zerobus::emulator
