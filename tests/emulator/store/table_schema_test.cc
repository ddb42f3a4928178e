// The emulator's table schema model: type text, declarations, Delta/UC JSON, descriptor -> schema
// and the descriptor-vs-table check create_stream does.
#include <google/protobuf/text_format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arrow/type.h>

#include "decode/emulator_status.h"
#include "decode/table_schema.h"

namespace arrow_zerobus::emulator {
namespace {

using ::testing::HasSubstr;

DescriptorProto ParseDescriptor(const std::string& text) {
  DescriptorProto d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &d)) << text;
  return d;
}

std::shared_ptr<arrow::DataType> Type(const std::string& text) {
  auto t = ParseTypeText(text);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : nullptr;
}

TEST(TypeText, PrimitivesAndNested) {
  EXPECT_TRUE(Type("bigint")->Equals(arrow::int64()));
  EXPECT_TRUE(Type("BIGINT")->Equals(arrow::int64()));
  EXPECT_TRUE(Type("int")->Equals(arrow::int32()));
  EXPECT_TRUE(Type("smallint")->Equals(arrow::int16()));
  EXPECT_TRUE(Type("tinyint")->Equals(arrow::int8()));
  EXPECT_TRUE(Type("boolean")->Equals(arrow::boolean()));
  EXPECT_TRUE(Type("float")->Equals(arrow::float32()));
  EXPECT_TRUE(Type("double")->Equals(arrow::float64()));
  EXPECT_TRUE(Type("string")->Equals(arrow::utf8()));
  EXPECT_TRUE(Type("binary")->Equals(arrow::binary()));
  EXPECT_TRUE(Type("date")->Equals(arrow::date32()));
  EXPECT_TRUE(Type("timestamp")->Equals(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  EXPECT_TRUE(Type("timestamp_ntz")->Equals(arrow::timestamp(arrow::TimeUnit::MICRO)));
  EXPECT_TRUE(Type("decimal(10, 2)")->Equals(arrow::decimal128(10, 2)));
  EXPECT_TRUE(Type("decimal")->Equals(arrow::decimal128(10, 0)));
  auto list = Type("array<int>");
  ASSERT_EQ(list->id(), arrow::Type::LIST);
  EXPECT_TRUE(list->field(0)->type()->Equals(arrow::int32()));
  EXPECT_TRUE(list->field(0)->nullable());
  auto st = Type("struct<a:int, b : string not null, c:array<struct<d:double>>>");
  ASSERT_EQ(st->id(), arrow::Type::STRUCT);
  ASSERT_EQ(st->num_fields(), 3);
  EXPECT_EQ(st->field(1)->name(), "b");
  EXPECT_FALSE(st->field(1)->nullable());
  EXPECT_EQ(st->field(2)->type()->field(0)->type()->id(), arrow::Type::STRUCT);
  auto map = Type("map<string,bigint>");
  ASSERT_EQ(map->id(), arrow::Type::MAP);
  const auto& m = static_cast<const arrow::MapType&>(*map);
  EXPECT_TRUE(m.key_type()->Equals(arrow::utf8()));
  EXPECT_TRUE(m.item_type()->Equals(arrow::int64()));
}

TEST(TypeText, TextRoundTrip) {
  for (const char* text : {"bigint", "array<int>", "struct<a:int,b:string not null>",
                           "map<string,array<double>>", "decimal(38,10)", "timestamp_ntz", "date",
                           "struct<x:map<int,struct<y:binary>>>"}) {
    EXPECT_EQ(TypeText(*Type(text)), text);
  }
  EXPECT_EQ(TypeName(*Type("bigint")), "LONG");
  EXPECT_EQ(TypeName(*Type("timestamp_ntz")), "TIMESTAMP_NTZ");
  EXPECT_EQ(TypeName(*Type("array<int>")), "ARRAY");
  EXPECT_EQ(TypeName(*Type("decimal(5,1)")), "DECIMAL");
}

TEST(TypeText, Errors) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"bignum", "unknown type 'bignum'"},
      {"array<int", "expected '>'"},
      {"decimal(39,2)", "precision must be 1..38"},
      {"decimal(5,6)", "scale 0..precision"},
      {"map<array<int>,int>", "map keys must be a primitive type"},
      {"struct<a:int,a:int>", "duplicate struct field 'a'"},
      {"struct<1a:int>", "bad struct field name"},
      {"int int", "unexpected text after the type"},
      {"", "expected a type name"},
  };
  for (const auto& c : cases) {
    auto t = ParseTypeText(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_THAT(t.status().message(), HasSubstr(c.message)) << c.text;
    EXPECT_EQ(ToStatusCode(t.status()), StatusCode::kInvalidArgument);
  }
}

TEST(Declaration, ParsesColumns) {
  auto schema = SchemaFromDeclaration(R"j({"columns": [
      {"name": "id", "type": "bigint", "nullable": false},
      {"name": "ts", "type": "timestamp"},
      {"name": "price", "type_text": "decimal(10,2)", "nullable": true},
      {"name": "tags", "type": "array<string>"}]})j");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  ASSERT_EQ((*schema)->num_fields(), 4);
  EXPECT_FALSE((*schema)->field(0)->nullable());
  EXPECT_TRUE((*schema)->field(1)->nullable());
  EXPECT_TRUE((*schema)->field(1)->type()->Equals(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  EXPECT_TRUE((*schema)->field(2)->type()->Equals(arrow::decimal128(10, 2)));
  // A bare array of columns is accepted too.
  auto bare = SchemaFromDeclaration(R"j([{"name": "a", "type": "int"}])j");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ((*bare)->field(0)->name(), "a");
}

TEST(Declaration, Errors) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"{", "not valid JSON"},
      {R"j({"cols": []})j", "has no \"columns\""},
      {R"j({"columns": {}})j", "must be an array"},
      {R"j({"columns": [{"type": "int"}]})j", "column 0: needs a string \"name\""},
      {R"j({"columns": [{"name": "a"}]})j", "column 0 ('a'): needs a string \"type\""},
      {R"j({"columns": [{"name": "a", "type": "int"}, {"name": "b", "type": "integr"}]})j",
       "column 1 ('b'): bad type text 'integr'"},
      {R"j({"columns": [{"name": "a", "type": "int", "nullable": "no"}]})j", "\"nullable\" must be true/false"},
      {R"j({"columns": [{"name": "a b", "type": "int"}]})j", "column 'a b': names must match"},
      {R"j({"columns": [{"name": "a", "type": "int"}, {"name": "A", "type": "int"}]})j",
       "column 'A' appears twice"},
      {R"j({"columns": []})j", "at least one column"},
  };
  for (const auto& c : cases) {
    auto s = SchemaFromDeclaration(c.json);
    ASSERT_FALSE(s.ok()) << c.json;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.json;
  }
}

TEST(Schema, NormalizeAndValidate) {
  auto source = arrow::schema({arrow::field("s", arrow::large_utf8()),
                               arrow::field("t", arrow::timestamp(arrow::TimeUnit::NANO, "Europe/Paris")),
                               arrow::field("l", arrow::list(arrow::int32())),
                               arrow::field("d", arrow::date64())});
  EXPECT_FALSE(ValidateTableSchema(*source).ok());
  auto normalized = NormalizeTableSchema(*source);
  ASSERT_TRUE(normalized.ok());
  EXPECT_TRUE((*normalized)->field(0)->type()->Equals(arrow::utf8()));
  EXPECT_TRUE((*normalized)->field(1)->type()->Equals(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  EXPECT_EQ((*normalized)->field(2)->type()->field(0)->name(), "element");
  EXPECT_TRUE((*normalized)->field(3)->type()->Equals(arrow::date32()));
  EXPECT_TRUE(ValidateTableSchema(**normalized).ok());

  auto bad = NormalizeTableSchema(*arrow::schema({arrow::field("u", arrow::uint64())}));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("column 'u': type uint64 cannot be a Delta table column"));
  auto nested_bad = NormalizeTableSchema(
      *arrow::schema({arrow::field("s", arrow::struct_({arrow::field("x", arrow::time32(arrow::TimeUnit::SECOND))}))}));
  ASSERT_FALSE(nested_bad.ok());
  EXPECT_THAT(nested_bad.status().message(), HasSubstr("column 's.x'"));
}

TEST(Schema, DeltaJsonRoundTrip) {
  auto schema = SchemaFromDeclaration(R"j({"columns": [
      {"name": "id", "type": "bigint", "nullable": false},
      {"name": "b", "type": "tinyint"}, {"name": "s", "type": "smallint"},
      {"name": "ts", "type": "timestamp"}, {"name": "ntz", "type": "timestamp_ntz"},
      {"name": "d", "type": "date"}, {"name": "dec", "type": "decimal(12,3)"},
      {"name": "arr", "type": "array<struct<x:int not null,y:string>>"},
      {"name": "m", "type": "map<string,double>"}]})j");
  ASSERT_TRUE(schema.ok());
  std::string text = DeltaSchemaJson(**schema);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["type"], "struct");
  EXPECT_EQ(j["fields"][0], nlohmann::json::parse(
                                R"j({"name":"id","type":"long","nullable":false,"metadata":{}})j"));
  EXPECT_EQ(j["fields"][1]["type"], "byte");
  EXPECT_EQ(j["fields"][2]["type"], "short");
  EXPECT_EQ(j["fields"][3]["type"], "timestamp");
  EXPECT_EQ(j["fields"][4]["type"], "timestamp_ntz");
  EXPECT_EQ(j["fields"][6]["type"], "decimal(12,3)");
  EXPECT_EQ(j["fields"][7]["type"]["type"], "array");
  EXPECT_EQ(j["fields"][7]["type"]["containsNull"], true);
  EXPECT_EQ(j["fields"][7]["type"]["elementType"]["fields"][0]["nullable"], false);
  EXPECT_EQ(j["fields"][8]["type"]["keyType"], "string");
  EXPECT_EQ(j["fields"][8]["type"]["valueType"], "double");
  auto back = SchemaFromDeltaJson(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE((*back)->Equals(**schema)) << (*back)->ToString() << "\n" << (*schema)->ToString();
  EXPECT_FALSE(SchemaFromDeltaJson("[1]").ok());
}

TEST(Schema, UnityCatalogColumns) {
  auto schema = SchemaFromDeclaration(R"j({"columns": [
      {"name": "id", "type": "bigint", "nullable": false},
      {"name": "price", "type": "decimal(10,2)"}]})j");
  ASSERT_TRUE(schema.ok());
  auto cols = nlohmann::json::parse(UnityCatalogColumnsJson(**schema));
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_EQ(cols[0]["name"], "id");
  EXPECT_EQ(cols[0]["type_name"], "LONG");
  EXPECT_EQ(cols[0]["type_text"], "bigint");
  EXPECT_EQ(cols[0]["nullable"], false);
  EXPECT_EQ(cols[0]["position"], 0);
  EXPECT_EQ(nlohmann::json::parse(cols[0]["type_json"].get<std::string>())["type"], "long");
  EXPECT_EQ(cols[1]["type_name"], "DECIMAL");
  EXPECT_EQ(cols[1]["type_text"], "decimal(10,2)");
  EXPECT_EQ(cols[1]["type_precision"], 10);
  EXPECT_EQ(cols[1]["type_scale"], 2);
  EXPECT_EQ(cols[1]["position"], 1);
}

constexpr const char* kDescriptor = R"pb(
  name: "Row"
  field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
  field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "kind" number: 3 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".pkg.Row.Kind" }
  field { name: "point" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".pkg.Row.Point" }
  field { name: "tags" number: 5 label: LABEL_REPEATED type: TYPE_STRING }
  field { name: "attrs" number: 6 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "AttrsEntry" }
  field { name: "u" number: 7 label: LABEL_OPTIONAL type: TYPE_UINT32 }
  field { name: "f" number: 8 label: LABEL_REQUIRED type: TYPE_FLOAT }
  field { name: "raw" number: 9 label: LABEL_OPTIONAL type: TYPE_BYTES }
  nested_type {
    name: "Point"
    field { name: "x" number: 1 label: LABEL_REQUIRED type: TYPE_DOUBLE }
    field { name: "y" number: 2 label: LABEL_OPTIONAL type: TYPE_SINT32 }
  }
  nested_type {
    name: "AttrsEntry"
    options { map_entry: true }
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
  }
  enum_type { name: "Kind" value { name: "A" number: 0 } value { name: "B" number: 1 } }
)pb";

TEST(SchemaFromDescriptor, MapsEveryKind) {
  auto schema = SchemaFromDescriptor(ParseDescriptor(kDescriptor));
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  auto expected = SchemaFromDeclaration(R"j({"columns": [
      {"name": "id", "type": "bigint", "nullable": false},
      {"name": "name", "type": "string"},
      {"name": "kind", "type": "string"},
      {"name": "point", "type": "struct<x:double not null,y:int>"},
      {"name": "tags", "type": "array<string>"},
      {"name": "attrs", "type": "map<string,bigint>"},
      {"name": "u", "type": "bigint"},
      {"name": "f", "type": "float", "nullable": false},
      {"name": "raw", "type": "binary"}]})j");
  ASSERT_TRUE(expected.ok());
  // Repeated fields have non-null elements (proto has no null element).
  auto fields = (*expected)->fields();
  fields[4] = arrow::field("tags", arrow::list(arrow::field("element", arrow::utf8(), false)));
  EXPECT_TRUE((*schema)->Equals(arrow::Schema(fields))) << (*schema)->ToString();
  // The descriptor matches the schema it created.
  EXPECT_TRUE(CheckDescriptorAgainstSchema(ParseDescriptor(kDescriptor), **schema).ok());
}

TEST(SchemaFromDescriptor, Errors) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {R"pb(name: "R")pb", "descriptor has no fields"},
      {R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_GROUP })pb",
       "field 'a' (#1): groups are not supported"},
      {R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".Nope" })pb",
       "type '.Nope' is not defined in the descriptor"},
      {R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "R" })pb",
       "message 'R' is recursive"},
      {R"pb(name: "R" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
                      field { name: "b" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 })pb",
       "field 'b' (#1): field number used twice"},
      {R"pb(name: "R" field { name: "a" number: 19500 label: LABEL_OPTIONAL type: TYPE_INT32 })pb",
       "outside 19000-19999"},
      {R"pb(name: "R" field { name: "a-b" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 })pb",
       "field 'a-b': name must match"},
  };
  for (const auto& c : cases) {
    auto s = SchemaFromDescriptor(ParseDescriptor(c.text));
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.text;
    EXPECT_EQ(ToStatusCode(s.status()), StatusCode::kInvalidArgument);
  }
}

std::shared_ptr<arrow::Schema> Declared(const std::string& columns) {
  auto s = SchemaFromDeclaration("{\"columns\": [" + columns + "]}");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

TEST(CheckDescriptor, AcceptsCompatibleTypesAndExtraNullableColumns) {
  auto table = Declared(R"j({"name": "id", "type": "bigint", "nullable": false},
                           {"name": "ts", "type": "timestamp", "nullable": false},
                           {"name": "day", "type": "date"},
                           {"name": "price", "type": "decimal(10,2)"},
                           {"name": "small", "type": "smallint"},
                           {"name": "d", "type": "double"},
                           {"name": "kind", "type": "string"},
                           {"name": "extra", "type": "string"},
                           {"name": "m", "type": "map<int,struct<a:string>>"})j");
  auto d = ParseDescriptor(R"pb(
    name: "R"
    field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_SINT64 }
    field { name: "ts" number: 2 label: LABEL_REQUIRED type: TYPE_INT64 }
    field { name: "day" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "price" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "small" number: 5 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "d" number: 6 label: LABEL_OPTIONAL type: TYPE_FLOAT }
    field { name: "kind" number: 7 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: "K" }
    field { name: "m" number: 8 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".R.MEntry" }
    nested_type {
      name: "MEntry" options { map_entry: true }
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".R.V" }
    }
    nested_type { name: "V" field { name: "a" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING } }
    enum_type { name: "K" value { name: "X" number: 1 } }
  )pb");
  auto st = CheckDescriptorAgainstSchema(d, *table);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(CheckDescriptor, SaysExactlyWhatIsWrong) {
  auto table = Declared(R"j({"name": "id", "type": "bigint", "nullable": false},
                           {"name": "name", "type": "string"},
                           {"name": "tags", "type": "array<int>"},
                           {"name": "p", "type": "struct<x:double not null,y:double>"},
                           {"name": "m", "type": "map<string,bigint>"})j");
  const std::string base_ok = R"pb(
    field { name: "tags" number: 3 label: LABEL_REPEATED type: TYPE_INT32 }
    field { name: "p" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "P" }
    field { name: "m" number: 5 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "MEntry" }
    nested_type { name: "P"
      field { name: "x" number: 1 label: LABEL_REQUIRED type: TYPE_DOUBLE }
      field { name: "y" number: 2 label: LABEL_OPTIONAL type: TYPE_DOUBLE } }
    nested_type { name: "MEntry" options { map_entry: true }
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 } }
  )pb";
  auto good = ParseDescriptor(R"pb(name: "R"
    field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
    field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING })pb" + base_ok);
  ASSERT_TRUE(CheckDescriptorAgainstSchema(good, *table).ok())
      << CheckDescriptorAgainstSchema(good, *table).ToString();

  struct Case {
    std::string text;
    const char* message;
  } cases[] = {
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
         field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING })pb" + base_ok,
       "descriptor field 'id' (#1) is optional but table column 'id' (bigint NOT NULL) is NOT NULL: "
       "the field must be required"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "name" number: 2 label: LABEL_REQUIRED type: TYPE_STRING })pb" + base_ok,
       "descriptor field 'name' (#2) is required but table column 'name' (string) is nullable"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "nam" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING })pb" + base_ok,
       "descriptor field 'nam' (#2) has no column of that name in the table (columns: id, name, tags, p, m)"},
      {R"pb(name: "R"
         field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING })pb" + base_ok,
       "table column 'id' is NOT NULL but the descriptor has no field 'id'"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_STRING }
         field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING })pb" + base_ok,
       "descriptor field 'id' (#1) has type string, which cannot be stored in table column 'id' (bigint NOT NULL)"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "name" number: 2 label: LABEL_REPEATED type: TYPE_STRING })pb" + base_ok,
       "descriptor field 'name' (#2) is repeated but table column 'name' (string) is not an array or map"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
         field { name: "tags" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 })pb",
       "descriptor field 'tags' (#3) is not repeated but table column 'tags' (array<int>) is an array or map"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
         field { name: "tags" number: 3 label: LABEL_REPEATED type: TYPE_DOUBLE })pb",
       "descriptor field 'tags' (#3) has type double, which cannot be stored in table column 'tags' (array<int>)"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "p" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "P" }
         nested_type { name: "P"
           field { name: "x" number: 1 label: LABEL_OPTIONAL type: TYPE_DOUBLE } })pb",
       "descriptor field 'p.x' (#1) is optional but table column 'p.x' (double NOT NULL) is NOT NULL"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "p" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "P" }
         nested_type { name: "P"
           field { name: "x" number: 1 label: LABEL_REQUIRED type: TYPE_DOUBLE }
           field { name: "z" number: 3 label: LABEL_OPTIONAL type: TYPE_DOUBLE } })pb",
       "descriptor field 'p.z' (#3) has no column of that name in the table (fields of 'p': x, y)"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "m" number: 5 label: LABEL_REPEATED type: TYPE_STRING })pb",
       "descriptor field 'm' (#5) (string) is not a map entry but table column 'm' (map<string,bigint>) is a map"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "m" number: 5 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "MEntry" }
         nested_type { name: "MEntry" options { map_entry: true }
           field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
           field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING } })pb",
       "descriptor field 'm.value' (#2) has type string, which cannot be stored in table column 'm.value' (bigint)"},
      {R"pb(name: "R"
         field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
         field { name: "id" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 })pb",
       "field 'id' appears twice"},
  };
  for (const auto& c : cases) {
    auto st = CheckDescriptorAgainstSchema(ParseDescriptor(c.text), *table);
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_THAT(st.message(), HasSubstr(c.message)) << c.text;
    EXPECT_EQ(ToStatusCode(st), StatusCode::kInvalidArgument);
  }
}

TEST(StatusCodes, MapArrowCodes) {
  EXPECT_EQ(ToStatusCode(arrow::Status::OK()), StatusCode::kOk);
  EXPECT_EQ(ToStatusCode(InvalidArgument("x")), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToStatusCode(NotFound("x")), StatusCode::kNotFound);
  EXPECT_EQ(ToStatusCode(Unimplemented("x")), StatusCode::kUnimplemented);
  EXPECT_EQ(ToStatusCode(arrow::Status::AlreadyExists("x")), StatusCode::kAlreadyExists);
  EXPECT_EQ(ToStatusCode(arrow::Status::IOError("x")), StatusCode::kInternal);
  EXPECT_EQ(static_cast<int>(StatusCode::kNotFound), 5);  // grpc::StatusCode::NOT_FOUND
}

}  // namespace
}  // namespace arrow_zerobus::emulator
