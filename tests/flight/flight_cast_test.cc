// The Flight schema of a table and CastForFlight, on real Arrow arrays.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <arrow/json/from_string.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/flight_schema.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<arrow::Array> A(const std::shared_ptr<arrow::DataType>& type,
                                const std::string& json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

std::shared_ptr<arrow::RecordBatch> Batch(const arrow::FieldVector& fields,
                                          const arrow::ArrayVector& columns) {
  return arrow::RecordBatch::Make(arrow::schema(fields), columns.empty() ? 0 : columns[0]->length(),
                                  columns);
}

FlightTarget Target(const std::vector<DeltaColumn>& columns) {
  auto target = FlightTargetForDeltaColumns(columns);
  EXPECT_TRUE(target.ok()) << target.status().ToString();
  return target.ValueOrDie();
}

FlightCastResult MustCast(const arrow::RecordBatch& batch, const FlightTarget& target) {
  auto result = CastForFlight(batch, target);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  auto out = result.MoveValueUnsafe();
  EXPECT_TRUE(out.batch->ValidateFull().ok()) << out.batch->ValidateFull().ToString();
  EXPECT_TRUE(out.batch->schema()->Equals(*target.flight_schema));
  return out;
}

// Casting one column of `type` values `json` to a table column of `type_text`.
FlightCastResult CastOne(const std::shared_ptr<arrow::DataType>& type, const std::string& json,
                         const std::string& type_text, bool nullable = true) {
  auto batch = Batch({arrow::field("c", type)}, {A(type, json)});
  return MustCast(*batch, Target({{"c", type_text, nullable}}));
}

void ExpectColumn(const FlightCastResult& r, const std::shared_ptr<arrow::DataType>& type,
                  const std::string& json) {
  const auto expected = A(type, json);
  EXPECT_TRUE(r.batch->column(0)->Equals(*expected))
      << "got " << r.batch->column(0)->ToString() << "\nwant " << expected->ToString();
}

void ExpectFailure(const FlightCastResult& r, size_t i, int64_t row, const std::string& column,
                   const std::string& reason) {
  ASSERT_GT(r.failures.size(), i);
  EXPECT_EQ(r.failures[i].row, row);
  EXPECT_EQ(r.failures[i].column, column);
  EXPECT_EQ(r.failures[i].reason, reason);
}

const auto kUtc = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
const auto kNtz = arrow::timestamp(arrow::TimeUnit::MICRO);

std::shared_ptr<arrow::DataType> FlightMap(std::shared_ptr<arrow::DataType> key,
                                           std::shared_ptr<arrow::DataType> value) {
  return arrow::MapType::Make(arrow::field(
             "entries", arrow::struct_({arrow::field("keys", std::move(key), false),
                                        arrow::field("values", std::move(value))}),
             false))
      .ValueOrDie();
}

// ---- the Flight schema ---------------------------------------------------------------------

TEST(FlightSchema, EveryDeltaTypeOfTheFactSheet) {
  const auto target = Target({
      {"s", "string", true},
      {"v", "variant", true},
      {"d", "decimal(10,2)", true},
      {"l", "bigint", false},
      {"i", "int", true},
      {"sm", "smallint", true},
      {"t", "tinyint", true},
      {"db", "double", true},
      {"f", "float", true},
      {"b", "boolean", true},
      {"bin", "binary", true},
      {"dt", "date", true},
      {"ts", "timestamp", true},
      {"ntz", "timestamp_ntz", true},
      {"arr", "array<int>", true},
      {"m", "map<string,bigint>", true},
      {"st", "struct<a:int not null,b:string>", true},
  });
  const auto expected = arrow::schema({
      arrow::field("s", arrow::large_utf8()),
      arrow::field("v", arrow::large_utf8()),
      arrow::field("d", arrow::large_utf8()),
      arrow::field("l", arrow::int64(), false),
      arrow::field("i", arrow::int32()),
      arrow::field("sm", arrow::int16()),
      arrow::field("t", arrow::int8()),
      arrow::field("db", arrow::float64()),
      arrow::field("f", arrow::float32()),
      arrow::field("b", arrow::boolean()),
      arrow::field("bin", arrow::large_binary()),
      arrow::field("dt", arrow::date32()),
      arrow::field("ts", kUtc),
      arrow::field("ntz", kNtz),
      arrow::field("arr", arrow::list(arrow::field("item", arrow::int32()))),
      arrow::field("m", FlightMap(arrow::large_utf8(), arrow::int64())),
      arrow::field("st", arrow::struct_({arrow::field("a", arrow::int32(), false),
                                         arrow::field("b", arrow::large_utf8())})),
  });
  EXPECT_TRUE(target.flight_schema->Equals(*expected)) << target.flight_schema->ToString();
  // Names inside nested types are part of what the service checks: say them explicitly.
  const auto& list = static_cast<const arrow::ListType&>(*target.flight_schema->field(14)->type());
  EXPECT_EQ(list.value_field()->name(), "item");
  EXPECT_TRUE(list.value_field()->nullable());
  const auto& map = static_cast<const arrow::MapType&>(*target.flight_schema->field(15)->type());
  EXPECT_EQ(map.value_field()->name(), "entries");
  EXPECT_EQ(map.key_field()->name(), "keys");
  EXPECT_FALSE(map.key_field()->nullable());
  EXPECT_EQ(map.item_field()->name(), "values");
  EXPECT_TRUE(map.item_field()->nullable());
  EXPECT_FALSE(map.keys_sorted());
  // The table side keeps what the values must fit.
  EXPECT_TRUE(target.table_schema->field(2)->type()->Equals(*arrow::decimal128(10, 2)));
  EXPECT_TRUE(target.table_schema->field(6)->type()->Equals(*arrow::int8()));
}

TEST(FlightSchema, FromTheBatchSchemaThroughTheDeltaMapping) {
  auto target = FlightTargetForArrowSchema(arrow::Schema({
      arrow::field("id", arrow::uint32(), false),
      arrow::field("name", arrow::dictionary(arrow::int8(), arrow::utf8())),
      arrow::field("at", arrow::timestamp(arrow::TimeUnit::NANO, "Europe/Paris")),
      arrow::field("price", arrow::decimal64(12, 3)),
      arrow::field("tags", arrow::large_list(arrow::utf8())),
      arrow::field("doc", arrow::extension::json(arrow::utf8())),
  }));
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  const auto expected = arrow::schema({
      arrow::field("id", arrow::int64(), false),
      arrow::field("name", arrow::large_utf8()),
      arrow::field("at", kUtc),
      arrow::field("price", arrow::large_utf8()),
      arrow::field("tags", arrow::list(arrow::field("item", arrow::large_utf8()))),
      arrow::field("doc", arrow::large_utf8()),
  });
  EXPECT_TRUE(target->flight_schema->Equals(*expected)) << target->flight_schema->ToString();
  EXPECT_TRUE(target->table_schema->field(3)->type()->Equals(*arrow::decimal128(12, 3)));
}

TEST(FlightSchema, RefusalsNameTheColumn) {
  auto bad_type = FlightTargetForDeltaColumns({{"when", "interval day", true}});
  ASSERT_FALSE(bad_type.ok());
  EXPECT_THAT(bad_type.status().message(), HasSubstr("column 'when'"));
  auto not_a_table_type = FlightTargetForTableSchema(
      arrow::schema({arrow::field("t", arrow::time32(arrow::TimeUnit::SECOND))}));
  ASSERT_FALSE(not_a_table_type.ok());
  EXPECT_THAT(not_a_table_type.status().message(), HasSubstr("column 't'"));
  EXPECT_THAT(not_a_table_type.status().message(), HasSubstr("time32"));
  auto nested = FlightTypeForTableType(
      arrow::struct_({arrow::field("x", arrow::uint16())}), "point");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(nested.status().message(), HasSubstr("column 'point.x'"));
  EXPECT_EQ(GetErrorKind(nested.status()), ErrorKind::kConversion);
  EXPECT_FALSE(FlightTargetForDeltaColumns({}).ok());
}

// ---- the cast: every type row, values checked ----------------------------------------------

TEST(FlightCast, AllGoodBatchIsZeroCopy) {
  const auto target = Target({
      {"id", "bigint", false},
      {"name", "string", true},
      {"ok", "boolean", true},
      {"day", "date", true},
      {"at", "timestamp", true},
      {"raw", "binary", true},
      {"xs", "array<bigint>", true},
      {"p", "struct<x:double,y:double>", true},
      {"m", "map<string,int>", true},
  });
  arrow::ArrayVector columns;
  for (int i = 0; i < target.flight_schema->num_fields(); ++i) {
    const auto& type = target.flight_schema->field(i)->type();
    const std::vector<std::string> json = {
        "[1, 2, 3]", R"(["a", null, "c"])", "[true, false, null]", "[0, 19000, null]",
        "[0, 1700000000000000, null]", R"(["YQ==", null, ""])", "[[1, 2], null, []]",
        R"([{"x": 1, "y": 2}, null, {"x": 3, "y": null}])", R"([[["k", 1]], null, []])"};
    columns.push_back(A(type, json[static_cast<size_t>(i)]));
  }
  auto batch = arrow::RecordBatch::Make(target.flight_schema, 3, columns);
  const auto r = MustCast(*batch, target);
  EXPECT_TRUE(r.failures.empty());
  EXPECT_TRUE(r.kept_rows.empty());
  ASSERT_EQ(r.batch->num_rows(), 3);
  // Every buffer at every depth is the input's own.
  std::function<void(const arrow::ArrayData&, const arrow::ArrayData&, const std::string&)> same =
      [&](const arrow::ArrayData& in, const arrow::ArrayData& out, const std::string& where) {
        ASSERT_EQ(in.buffers.size(), out.buffers.size()) << where;
        for (size_t b = 0; b < in.buffers.size(); ++b) {
          const auto* a = in.buffers[b] ? in.buffers[b]->data() : nullptr;
          const auto* c = out.buffers[b] ? out.buffers[b]->data() : nullptr;
          EXPECT_EQ(a, c) << where << " buffer " << b;
        }
        ASSERT_EQ(in.child_data.size(), out.child_data.size()) << where;
        for (size_t k = 0; k < in.child_data.size(); ++k) {
          same(*in.child_data[k], *out.child_data[k], where + "." + std::to_string(k));
        }
      };
  for (int i = 0; i < batch->num_columns(); ++i) {
    same(*batch->column(i)->data(), *r.batch->column(i)->data(), batch->column_name(i));
  }
}

TEST(FlightCast, MatchesColumnsByNameAndWritesTheTableOrder) {
  auto batch = Batch({arrow::field("b", arrow::utf8()), arrow::field("a", arrow::int64())},
                     {A(arrow::utf8(), R"(["x", "y"])"), A(arrow::int64(), "[1, 2]")});
  const auto r = MustCast(*batch, Target({{"a", "bigint", true}, {"b", "string", true}}));
  EXPECT_TRUE(r.batch->column(0)->Equals(*A(arrow::int64(), "[1, 2]")));
  EXPECT_TRUE(r.batch->column(1)->Equals(*A(arrow::large_utf8(), R"(["x", "y"])")));
}

TEST(FlightCast, StringVariants) {
  for (const auto& type : {arrow::utf8(), arrow::large_utf8(), arrow::utf8_view()}) {
    SCOPED_TRACE(type->ToString());
    const auto r = CastOne(type, R"(["héllo", null, ""])", "string");
    ExpectColumn(r, arrow::large_utf8(), R"(["héllo", null, ""])");
    const auto v = CastOne(type, R"(["{\"a\": 1}"])", "variant");
    ExpectColumn(v, arrow::large_utf8(), R"(["{\"a\": 1}"])");
  }
  // utf8 -> large_utf8 widens the offsets only: the characters are not copied.
  auto utf8 = A(arrow::utf8(), R"(["abc", null, "de"])");
  auto r8 = MustCast(*Batch({arrow::field("c", arrow::utf8())}, {utf8}), Target({{"c", "string"}}));
  EXPECT_EQ(r8.batch->column(0)->data()->buffers[2]->data(), utf8->data()->buffers[2]->data());
  auto json_ext = arrow::extension::json(arrow::utf8());
  auto storage = A(arrow::utf8(), R"(["[1,2]", null])");
  auto ext = arrow::ExtensionType::WrapArray(json_ext, storage);
  auto batch = Batch({arrow::field("c", json_ext)}, {ext});
  const auto r = MustCast(*batch, Target({{"c", "variant", true}}));
  ExpectColumn(r, arrow::large_utf8(), R"(["[1,2]", null])");
}

TEST(FlightCast, BinaryVariants) {
  for (const auto& type : {arrow::binary(), arrow::large_binary(), arrow::binary_view()}) {
    SCOPED_TRACE(type->ToString());
    ExpectColumn(CastOne(type, R"(["YWI=", null])", "binary"), arrow::large_binary(),
                 R"(["YWI=", null])");
  }
  ExpectColumn(CastOne(arrow::fixed_size_binary(2), R"(["ab", null])", "binary"),
               arrow::large_binary(), R"(["ab", null])");
}

TEST(FlightCast, DictionaryAndRunEndEncodedHydrate) {
  auto dict_type = arrow::dictionary(arrow::int8(), arrow::utf8());
  auto dict = arrow::json::DictArrayFromJSONString(dict_type, "[1, 0, null, 1]",
                                                   R"(["red", "blue"])")
                  .ValueOrDie();
  auto batch = Batch({arrow::field("c", dict_type)}, {dict});
  auto r = MustCast(*batch, Target({{"c", "string", true}}));
  ExpectColumn(r, arrow::large_utf8(), R"(["blue", "red", null, "blue"])");

  auto ree = arrow::RunEndEncodedArray::Make(5, A(arrow::int32(), "[2, 3, 5]"),
                                             A(arrow::float64(), "[1.5, null, 7]"))
                 .ValueOrDie();
  auto sliced = ree->Slice(1, 3);  // offsets inside the runs too
  batch = Batch({arrow::field("c", sliced->type())}, {sliced});
  r = MustCast(*batch, Target({{"c", "double", true}}));
  ExpectColumn(r, arrow::float64(), "[1.5, null, 7]");
}

TEST(FlightCast, FloatsWidenExactly) {
  ExpectColumn(CastOne(arrow::float32(), "[0.5, null]", "double"), arrow::float64(),
               "[0.5, null]");
  ExpectColumn(CastOne(arrow::float32(), "[0.25]", "float"), arrow::float32(), "[0.25]");
  ExpectColumn(CastOne(arrow::float16(), "[1.5, null]", "float"), arrow::float32(),
               "[1.5, null]");
  ExpectColumn(CastOne(arrow::float64(), "[0.1]", "double"), arrow::float64(), "[0.1]");
  ExpectColumn(CastOne(arrow::boolean(), "[true, null]", "boolean"), arrow::boolean(),
               "[true, null]");
}

TEST(FlightCast, IntegersWidenAndNarrowPerValue) {
  ExpectColumn(CastOne(arrow::int32(), "[1, null, -5]", "bigint"), arrow::int64(),
               "[1, null, -5]");
  ExpectColumn(CastOne(arrow::uint32(), "[4294967295]", "bigint"), arrow::int64(),
               "[4294967295]");
  ExpectColumn(CastOne(arrow::uint8(), "[255]", "smallint"), arrow::int16(), "[255]");
  ExpectColumn(CastOne(arrow::uint16(), "[65535]", "int"), arrow::int32(), "[65535]");

  auto r = CastOne(arrow::int16(), "[1, 300, null, -129, -128]", "tinyint");
  ExpectColumn(r, arrow::int8(), "[1, null, -128]");
  ASSERT_EQ(r.failures.size(), 2u);
  ExpectFailure(r, 0, 1, "c", "value 300 overflows TINYINT");
  ExpectFailure(r, 1, 3, "c", "value -129 overflows TINYINT");
  EXPECT_EQ(r.kept_rows, (std::vector<int64_t>{0, 2, 4}));

  r = CastOne(arrow::uint64(), "[9223372036854775807, 9223372036854775808, 18446744073709551615]",
              "bigint");
  ExpectColumn(r, arrow::int64(), "[9223372036854775807]");
  ExpectFailure(r, 0, 1, "c", "value 9223372036854775808 overflows BIGINT");
  ExpectFailure(r, 1, 2, "c", "value 18446744073709551615 overflows BIGINT");

  r = CastOne(arrow::int64(), "[-2147483649, 2147483648]", "int");
  ExpectFailure(r, 0, 0, "c", "value -2147483649 overflows INT");
  ExpectFailure(r, 1, 1, "c", "value 2147483648 overflows INT");
  EXPECT_EQ(r.batch->num_rows(), 0);

  r = CastOne(arrow::uint16(), "[32767, 32768]", "smallint");
  ExpectColumn(r, arrow::int16(), "[32767]");
  ExpectFailure(r, 0, 1, "c", "value 32768 overflows SMALLINT");
}

TEST(FlightCast, NullInANotNullColumnFailsTheRow) {
  auto r = CastOne(arrow::int64(), "[1, null, 3]", "bigint", /*nullable=*/false);
  ExpectColumn(r, arrow::int64(), "[1, 3]");
  ASSERT_EQ(r.failures.size(), 1u);
  ExpectFailure(r, 0, 1, "c", "null in NOT NULL column 'c'");
  EXPECT_EQ(r.kept_rows, (std::vector<int64_t>{0, 2}));
}

TEST(FlightCast, DatesFloorToDays) {
  ExpectColumn(CastOne(arrow::date32(), "[19000, null]", "date"), arrow::date32(),
               "[19000, null]");
  auto r = CastOne(arrow::date64(), "[86400000, -1, 0, null, 9223372036854775807]", "date");
  ExpectColumn(r, arrow::date32(), "[1, -1, 0, null]");
  ExpectFailure(r, 0, 4, "c", "date64 value 9223372036854775807 ms is outside the DATE range");
}

TEST(FlightCast, TimestampsBecomeMicroseconds) {
  const auto s = arrow::timestamp(arrow::TimeUnit::SECOND, "UTC");
  auto r = CastOne(s, "[1, null, 9223372036854775807]", "timestamp");
  ExpectColumn(r, kUtc, "[1000000, null]");
  ExpectFailure(r, 0, 2, "c",
                "timestamp 9223372036854775807 s overflows TIMESTAMP (64-bit microseconds)");

  const auto ms = arrow::timestamp(arrow::TimeUnit::MILLI);
  r = CastOne(ms, "[-1, 9223372036854775, 9223372036854776]", "timestamp_ntz");
  ExpectColumn(r, kNtz, "[-1000, 9223372036854775000]");
  ExpectFailure(r, 0, 2, "c",
                "timestamp 9223372036854776 ms overflows TIMESTAMP (64-bit microseconds)");

  const auto ns = arrow::timestamp(arrow::TimeUnit::NANO, "America/New_York");
  ExpectColumn(CastOne(ns, "[1999, -1, null]", "timestamp"), kUtc, "[1, -1, null]");

  // Microseconds in another zone: same instants, the column's zone, the same buffers.
  const auto us_paris = arrow::timestamp(arrow::TimeUnit::MICRO, "Europe/Paris");
  auto in = A(us_paris, "[5, 6]");
  auto batch = Batch({arrow::field("c", us_paris)}, {in});
  r = MustCast(*batch, Target({{"c", "timestamp", true}}));
  ExpectColumn(r, kUtc, "[5, 6]");
  EXPECT_EQ(r.batch->column(0)->data()->buffers[1]->data(), in->data()->buffers[1]->data());
}

TEST(FlightCast, DecimalsBecomeCanonicalTextOfTheColumnScale) {
  for (const auto& type : {arrow::decimal32(9, 3), arrow::decimal64(12, 3),
                           arrow::decimal128(20, 3), arrow::decimal256(40, 3)}) {
    SCOPED_TRACE(type->ToString());
    auto r = CastOne(type, R"(["123.450", "123.456", "-0.500", null, "1234.500", "0.001"])",
                     "decimal(5,2)");
    ExpectColumn(r, arrow::large_utf8(), R"(["123.45", "-0.50", null])");
    ASSERT_EQ(r.failures.size(), 3u);
    ExpectFailure(r, 0, 1, "c", "decimal 123.456 does not fit DECIMAL(5,2)");
    ExpectFailure(r, 1, 4, "c", "decimal 1234.500 does not fit DECIMAL(5,2)");
    ExpectFailure(r, 2, 5, "c", "decimal 0.001 does not fit DECIMAL(5,2)");
  }
  // Scale up; zero; small values keep plain notation.
  ExpectColumn(CastOne(arrow::decimal128(3, 0), R"(["7", "0", "-12"])", "decimal(10,4)"),
               arrow::large_utf8(), R"(["7.0000", "0.0000", "-12.0000"])");
  ExpectColumn(CastOne(arrow::decimal128(10, 10), R"(["0.0000000001"])", "decimal(12,10)"),
               arrow::large_utf8(), R"(["0.0000000001"])");
  ExpectColumn(CastOne(arrow::decimal128(38, 0), R"(["12"])", "decimal(38,0)"),
               arrow::large_utf8(), R"(["12"])");
  // A digit too many once scaled up.
  auto r = CastOne(arrow::decimal128(5, 0), R"(["99999", "999"])", "decimal(5,2)");
  ExpectColumn(r, arrow::large_utf8(), R"(["999.00"])");
  ExpectFailure(r, 0, 0, "c", "decimal 99999 does not fit DECIMAL(5,2)");
}

TEST(FlightCast, DecimalFromStringsAndIntegers) {
  for (const auto& type : {arrow::utf8(), arrow::large_utf8(), arrow::utf8_view()}) {
    SCOPED_TRACE(type->ToString());
    auto r = CastOne(type, R"(["12.5", "abc", null, "-0.125", "1E+2", "1000"])", "decimal(5,2)");
    ExpectColumn(r, arrow::large_utf8(), R"(["12.50", null, "100.00"])");
    ASSERT_EQ(r.failures.size(), 3u);
    ExpectFailure(r, 0, 1, "c", "'abc' is not a valid DECIMAL(5,2) value");
    ExpectFailure(r, 1, 3, "c", "decimal -0.125 does not fit DECIMAL(5,2)");
    ExpectFailure(r, 2, 5, "c", "decimal 1000 does not fit DECIMAL(5,2)");
  }
  auto r = CastOne(arrow::int32(), "[7, -7, 1000, null]", "decimal(5,2)");
  ExpectColumn(r, arrow::large_utf8(), R"(["7.00", "-7.00", null])");
  ExpectFailure(r, 0, 2, "c", "value 1000 does not fit DECIMAL(5,2)");
  r = CastOne(arrow::uint64(), "[18446744073709551615]", "decimal(20,0)");
  ExpectColumn(r, arrow::large_utf8(), R"(["18446744073709551615"])");
  r = CastOne(arrow::uint64(), "[18446744073709551615]", "decimal(19,0)");
  ExpectFailure(r, 0, 0, "c", "value 18446744073709551615 does not fit DECIMAL(19,0)");
}

// ---- nested ---------------------------------------------------------------------------------

TEST(FlightCast, ListKindsBecomeListOfItem) {
  const auto want = arrow::list(arrow::field("item", arrow::int64()));
  for (const auto& type :
       {arrow::list(arrow::int64()), arrow::large_list(arrow::int64()),
        arrow::fixed_size_list(arrow::int64(), 2), arrow::list_view(arrow::int64()),
        arrow::large_list_view(arrow::int64())}) {
    SCOPED_TRACE(type->ToString());
    ExpectColumn(CastOne(type, "[[1, 2], null, [3, null]]", "array<bigint>"), want,
                 "[[1, 2], null, [3, null]]");
  }
  // List views may share and reorder values; sliced, with a failing value seen twice.
  auto views = arrow::ListViewArray::FromArrays(*A(arrow::int32(), "[2, 0, 0, 1]"),
                                                *A(arrow::int32(), "[1, 3, 0, 2]"),
                                                *A(arrow::int16(), "[1, 300, 2]"))
                   .ValueOrDie();
  auto batch = Batch({arrow::field("c", views->type())}, {views->Slice(1)});
  auto r = MustCast(*batch, Target({{"c", "array<tinyint>", true}}));
  ExpectColumn(r, arrow::list(arrow::field("item", arrow::int8())), "[[]]");
  ASSERT_EQ(r.failures.size(), 2u);
  ExpectFailure(r, 0, 0, "c.item", "value 300 overflows TINYINT");
  ExpectFailure(r, 1, 2, "c.item", "value 300 overflows TINYINT");
}

TEST(FlightCast, ListElementFailuresNameTheRow) {
  // Sliced: offsets do not start at zero, and row indices are the slice's.
  auto in = A(arrow::list(arrow::int16()), "[[300], [1, 2], [3, 300, 4], null, [], [-200]]");
  auto batch = Batch({arrow::field("xs", in->type())}, {in->Slice(1)});
  auto r = MustCast(*batch, Target({{"xs", "array<tinyint>", true}}));
  ExpectColumn(r, arrow::list(arrow::field("item", arrow::int8())), "[[1, 2], null, []]");
  ASSERT_EQ(r.failures.size(), 2u);
  ExpectFailure(r, 0, 1, "xs.item", "value 300 overflows TINYINT");
  ExpectFailure(r, 1, 4, "xs.item", "value -200 overflows TINYINT");
  EXPECT_EQ(r.kept_rows, (std::vector<int64_t>{0, 2, 3}));

  // A NOT NULL element type: a null element fails its row.
  // (The type text grammar has no NOT NULL for elements: the table schema says it directly.)
  auto strict = FlightTargetForTableSchema(arrow::schema(
      {arrow::field("c", arrow::list(arrow::field("element", arrow::int64(), false)))}));
  ASSERT_TRUE(strict.ok()) << strict.status().ToString();
  const auto& item = static_cast<const arrow::ListType&>(
      *strict->flight_schema->field(0)->type()).value_field();
  EXPECT_EQ(item->name(), "item");
  EXPECT_FALSE(item->nullable());
  batch = Batch({arrow::field("c", arrow::list(arrow::int64()))},
                {A(arrow::list(arrow::int64()), "[[1], [null], null]")});
  r = MustCast(*batch, *strict);
  ExpectFailure(r, 0, 1, "c.item", "null in NOT NULL column 'c.item'");
  EXPECT_EQ(r.batch->num_rows(), 2);
}

TEST(FlightCast, StructFieldsMatchByNameAndFailPerRow) {
  const auto type = arrow::struct_({arrow::field("b", arrow::utf8()),
                                    arrow::field("a", arrow::int16())});
  auto with_null = A(type, R"([null, {"b": "y", "a": 300}, {"b": null, "a": 2}])");
  auto batch = Batch({arrow::field("s", type)}, {with_null});
  auto r = MustCast(*batch, Target({{"s", "struct<a:tinyint,b:string,c:int>", true}}));
  const auto want = arrow::struct_({arrow::field("a", arrow::int8()),
                                    arrow::field("b", arrow::large_utf8()),
                                    arrow::field("c", arrow::int32())});
  ExpectColumn(r, want, R"([null, {"a": 2, "b": null, "c": null}])");
  ASSERT_EQ(r.failures.size(), 1u);
  ExpectFailure(r, 0, 1, "s.a", "value 300 overflows TINYINT");

  // Under a null struct a bad value is not the row's value.
  auto hidden = arrow::StructArray::Make({A(arrow::int16(), "[300, 1]")},
                                         {arrow::field("a", arrow::int16())},
                                         A(arrow::boolean(), "[false, true]")->data()->buffers[1])
                    .ValueOrDie();
  batch = Batch({arrow::field("s", hidden->type())}, {hidden});
  r = MustCast(*batch, Target({{"s", "struct<a:tinyint not null>", true}}));
  EXPECT_TRUE(r.failures.empty());
  EXPECT_EQ(r.batch->num_rows(), 2);
}

TEST(FlightCast, MapsGetTheServiceEntryNames) {
  const auto type = arrow::map(arrow::utf8(), arrow::int16());
  auto r = CastOne(type, R"([[["a", 1], ["b", 300]], null, [["c", null]], []])",
                   "map<string,tinyint>");
  ExpectColumn(r, FlightMap(arrow::large_utf8(), arrow::int8()),
               R"([null, [["c", null]], []])");
  ASSERT_EQ(r.failures.size(), 1u);
  ExpectFailure(r, 0, 0, "c.value", "value 300 overflows TINYINT");
  r = CastOne(arrow::map(arrow::int64(), arrow::utf8()), R"([[[1, "x"]], [[300, "y"]]])",
              "map<tinyint,string>");
  ExpectFailure(r, 0, 1, "c.key", "value 300 overflows TINYINT");
}

// ---- whole-batch errors ---------------------------------------------------------------------

TEST(FlightCast, MissingAndExtraColumns) {
  auto batch = Batch({arrow::field("id", arrow::int64())}, {A(arrow::int64(), "[1, 2]")});
  // A missing nullable column becomes nulls.
  auto r = MustCast(*batch, Target({{"id", "bigint", true}, {"note", "string", true}}));
  EXPECT_EQ(r.batch->column(1)->null_count(), 2);

  auto missing = CastForFlight(*batch, Target({{"id", "bigint", true}, {"k", "int", false}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(GetErrorKind(missing.status()), ErrorKind::kConversion);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("column 'k' is NOT NULL in the table but missing from the batch"));

  auto extra = CastForFlight(*batch, Target({{"other", "bigint", true}}));
  ASSERT_FALSE(extra.ok());
  EXPECT_THAT(extra.status().message(), HasSubstr("column 'id' of the batch is not in the table"));

  auto s = Batch({arrow::field("p", arrow::struct_({arrow::field("x", arrow::int64())}))},
                 {A(arrow::struct_({arrow::field("x", arrow::int64())}), R"([{"x": 1}])")});
  auto nested_extra = CastForFlight(*s, Target({{"p", "struct<y:bigint>", true}}));
  ASSERT_FALSE(nested_extra.ok());
  EXPECT_THAT(nested_extra.status().message(), HasSubstr("column 'p.x' of the batch is not in"));
  auto nested_missing = CastForFlight(*s, Target({{"p", "struct<x:bigint,z:int not null>", true}}));
  ASSERT_FALSE(nested_missing.ok());
  EXPECT_THAT(nested_missing.status().message(), HasSubstr("column 'p.z' is NOT NULL"));
  auto nested_null = MustCast(*s, Target({{"p", "struct<x:bigint,z:int>", true}}));
  ExpectColumn(nested_null,
               arrow::struct_({arrow::field("x", arrow::int64()), arrow::field("z", arrow::int32())}),
               R"([{"x": 1, "z": null}])");

  auto twice = Batch({arrow::field("id", arrow::int64()), arrow::field("id", arrow::int64())},
                     {A(arrow::int64(), "[1]"), A(arrow::int64(), "[2]")});
  auto dup = CastForFlight(*twice, Target({{"id", "bigint", true}}));
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("column 'id' appears more than once"));
}

TEST(FlightCast, TypesThatCannotHoldTheColumnAreRefused) {
  struct Case {
    std::shared_ptr<arrow::DataType> type;
    const char* json;
    const char* type_text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {arrow::utf8(), R"(["1"])", "bigint",
       "column 'c': Arrow type string cannot be sent to the table's BIGINT column"},
      {arrow::float64(), "[1.5]", "float",
       "column 'c': Arrow type double cannot be sent to the table's FLOAT column"},
      {arrow::float64(), "[1.5]", "decimal(5,2)",
       "column 'c': Arrow type double cannot be sent to the table's DECIMAL(5,2) column"},
      {arrow::int64(), "[1]", "timestamp",
       "column 'c': Arrow type int64 cannot be sent to the table's TIMESTAMP column"},
      {arrow::list(arrow::utf8()), R"([["a"]])", "array<int>",
       "column 'c.item': Arrow type string cannot be sent to the table's INT column"},
      {arrow::binary(), R"(["YQ=="])", "string",
       "column 'c': Arrow type binary cannot be sent to the table's STRING column"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type_text);
    auto batch = Batch({arrow::field("c", c.type)}, {A(c.type, c.json)});
    auto r = CastForFlight(*batch, Target({{"c", c.type_text, true}}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kConversion);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
}

TEST(FlightCast, TargetFromTheBatchItselfCastsEveryMappedType) {
  // The schema a caller's batch declares when no table is at hand: every row of the
  // type-mapping table that needs a cast, through FlightTargetForArrowSchema.
  const auto schema = arrow::schema({
      arrow::field("u64", arrow::uint64(), false),
      arrow::field("u8", arrow::uint8()),
      arrow::field("h", arrow::float16()),
      arrow::field("s", arrow::utf8_view()),
      arrow::field("fb", arrow::fixed_size_binary(1)),
      arrow::field("d64", arrow::date64()),
      arrow::field("ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      arrow::field("dec", arrow::decimal256(7, 2)),
      arrow::field("fl", arrow::fixed_size_list(arrow::int32(), 1)),
  });
  const auto target = FlightTargetForArrowSchema(*schema).ValueOrDie();
  arrow::ArrayVector columns = {
      A(arrow::uint64(), "[1, 18446744073709551615]"),
      A(arrow::uint8(), "[200, 1]"),
      A(arrow::float16(), "[0.5, 1]"),
      A(arrow::utf8_view(), R"(["a", "b"])"),
      A(arrow::fixed_size_binary(1), R"(["a", "b"])"),
      A(arrow::date64(), "[86400000, 0]"),
      A(arrow::timestamp(arrow::TimeUnit::NANO), "[1000, 2000]"),
      A(arrow::decimal256(7, 2), R"(["12345.67", "0.10"])"),
      A(arrow::fixed_size_list(arrow::int32(), 1), "[[1], [2]]"),
  };
  auto batch = arrow::RecordBatch::Make(schema, 2, columns);
  const auto r = MustCast(*batch, target);
  ASSERT_EQ(r.failures.size(), 1u);
  ExpectFailure(r, 0, 1, "u64", "value 18446744073709551615 overflows BIGINT");
  ASSERT_EQ(r.batch->num_rows(), 1);
  EXPECT_EQ(r.batch->column(1)->ToString(), A(arrow::int16(), "[200]")->ToString());
  EXPECT_TRUE(r.batch->column(2)->Equals(*A(arrow::float32(), "[0.5]")));
  EXPECT_TRUE(r.batch->column(5)->Equals(*A(arrow::date32(), "[1]")));
  EXPECT_TRUE(r.batch->column(6)->Equals(*A(kNtz, "[1]")));
  EXPECT_TRUE(r.batch->column(7)->Equals(*A(arrow::large_utf8(), R"(["12345.67"])")));
  EXPECT_TRUE(r.batch->column(8)->Equals(
      *A(arrow::list(arrow::field("item", arrow::int32())), "[[1]]")));
}

TEST(FlightCast, SlicedBatchesNullsAndEmptyBatches) {
  // A slice at a bit offset that is not a multiple of 8: validity is re-based, indices are the
  // slice's own.
  const auto in = A(arrow::int32(), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 200, null, -1, 300]");
  auto batch = Batch({arrow::field("c", arrow::int32())}, {in})->Slice(9);
  auto r = MustCast(*batch, Target({{"c", "tinyint", true}}));
  ExpectColumn(r, arrow::int8(), "[9, null, -1]");
  ASSERT_EQ(r.failures.size(), 2u);
  ExpectFailure(r, 0, 1, "c", "value 200 overflows TINYINT");
  ExpectFailure(r, 1, 4, "c", "value 300 overflows TINYINT");
  EXPECT_EQ(r.kept_rows, (std::vector<int64_t>{0, 2, 3}));

  const auto dates = A(arrow::date64(), "[0, 0, 0, null, 172800000]");
  batch = Batch({arrow::field("d", arrow::date64())}, {dates})->Slice(3);
  r = MustCast(*batch, Target({{"d", "date", true}}));
  ExpectColumn(r, arrow::date32(), "[null, 2]");

  batch = Batch({arrow::field("c", arrow::int64())}, {A(arrow::int64(), "[]")});
  r = MustCast(*batch, Target({{"c", "int", false}, {"d", "string", true}}));
  EXPECT_EQ(r.batch->num_rows(), 0);
  EXPECT_TRUE(r.failures.empty());
}

TEST(FlightCast, NestedListsAndDecimalsInStructs) {
  const auto nested = arrow::list(arrow::list(arrow::int16()));
  auto target = FlightTargetForArrowSchema(arrow::Schema({arrow::field("m", nested)}));
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  const auto item = [](std::shared_ptr<arrow::DataType> t) {
    return arrow::list(arrow::field("item", std::move(t)));
  };
  EXPECT_TRUE(target->flight_schema->field(0)->type()->Equals(*item(item(arrow::int16()))));
  // Into a table of tinyint: the inner failure names the outer row.
  auto batch = Batch({arrow::field("m", nested)},
                     {A(nested, "[[[1], [2, 3]], [[4], null, [5, 300]], null, [[]]]")});
  auto r = MustCast(*batch, Target({{"m", "array<array<tinyint>>", true}}));
  ExpectColumn(r, item(item(arrow::int8())), "[[[1], [2, 3]], null, [[]]]");
  ASSERT_EQ(r.failures.size(), 1u);
  ExpectFailure(r, 0, 1, "m.item.item", "value 300 overflows TINYINT");

  const auto s = arrow::struct_({arrow::field("price", arrow::decimal128(6, 3)),
                                 arrow::field("qty", arrow::int64())});
  batch = Batch({arrow::field("o", s)},
                {A(s, R"([{"price": "1.250", "qty": 1}, {"price": "1.255", "qty": 2}])")});
  r = MustCast(*batch, Target({{"o", "struct<price:decimal(5,2),qty:bigint>", true}}));
  ExpectColumn(r, arrow::struct_({arrow::field("price", arrow::large_utf8()),
                                  arrow::field("qty", arrow::int64())}),
               R"([{"price": "1.25", "qty": 1}])");
  ExpectFailure(r, 0, 1, "o.price", "decimal 1.255 does not fit DECIMAL(5,2)");
}

TEST(FlightSchema, ColumnNamesAndNestedListsThatProtobufRefuses) {
  auto target = FlightTargetForArrowSchema(arrow::Schema(
      {arrow::field("reading at", arrow::list(arrow::list(arrow::float64())), false)}));
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->flight_schema->field(0)->name(), "reading at");
  EXPECT_FALSE(target->flight_schema->field(0)->nullable());
  auto bad_scale = FlightTargetForTableSchema(
      arrow::schema({arrow::field("amount", arrow::decimal128(10, -2))}));
  ASSERT_FALSE(bad_scale.ok());
  EXPECT_THAT(bad_scale.status().message(),
              HasSubstr("column 'amount': decimal128(10, -2) is not a Delta DECIMAL(p,s)"));
}

}  // namespace
}  // namespace arrow_zerobus
