// Binding Arrow columns to a caller-supplied descriptor: every target type, and every mismatch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>
#include <google/protobuf/text_format.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;
using FDP = FieldDescriptorProto;

DescriptorProto Parse(const std::string& text) {
  DescriptorProto d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &d)) << text;
  return d;
}

// A message with one field of each scalar type, an enum, a nested message, a map, and
// packed/unpacked repeated fields.
const char* kAllTypes = R"pb(
  name: "Target"
  field { name: "f_int32" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "f_int64" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "f_uint32" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT32 }
  field { name: "f_uint64" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "f_sint32" number: 5 label: LABEL_OPTIONAL type: TYPE_SINT32 }
  field { name: "f_sint64" number: 6 label: LABEL_OPTIONAL type: TYPE_SINT64 }
  field { name: "f_fixed32" number: 7 label: LABEL_OPTIONAL type: TYPE_FIXED32 }
  field { name: "f_fixed64" number: 8 label: LABEL_OPTIONAL type: TYPE_FIXED64 }
  field { name: "f_sfixed32" number: 9 label: LABEL_OPTIONAL type: TYPE_SFIXED32 }
  field { name: "f_sfixed64" number: 10 label: LABEL_OPTIONAL type: TYPE_SFIXED64 }
  field { name: "f_float" number: 11 label: LABEL_OPTIONAL type: TYPE_FLOAT }
  field { name: "f_double" number: 12 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field { name: "f_bool" number: 13 label: LABEL_OPTIONAL type: TYPE_BOOL }
  field { name: "f_string" number: 14 label: LABEL_REQUIRED type: TYPE_STRING }
  field { name: "f_bytes" number: 15 label: LABEL_OPTIONAL type: TYPE_BYTES }
  field { name: "f_enum_name" number: 16 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".Target.Color" }
  field { name: "f_enum_number" number: 17 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".Target.Color" }
  field { name: "f_msg" number: 18 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".Target.Inner" }
  field { name: "f_map" number: 19 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".Target.FMapEntry" }
  field { name: "f_packed" number: 20 label: LABEL_REPEATED type: TYPE_INT64 options { packed: true } }
  field { name: "f_unpacked" number: 21 label: LABEL_REPEATED type: TYPE_SINT32 }
  field { name: "f_msgs" number: 22 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".Target.Inner" }
  field { name: "f_optional_unbound" number: 23 label: LABEL_OPTIONAL type: TYPE_INT32 }
  nested_type {
    name: "Inner"
    field { name: "a" number: 1 label: LABEL_REQUIRED type: TYPE_INT32 }
    field { name: "b" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  nested_type {
    name: "FMapEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".Target.Inner" }
    options { map_entry: true }
  }
  enum_type {
    name: "Color"
    value { name: "RED" number: 0 }
    value { name: "GREEN" number: 5 }
    value { name: "BLUE" number: 2 }
  }
)pb";

std::shared_ptr<arrow::DataType> InnerStruct() {
  return arrow::struct_({arrow::field("a", arrow::int16(), false), arrow::field("b", arrow::utf8())});
}

arrow::FieldVector AllTypesColumns() {
  return {
      arrow::field("f_string", arrow::large_utf8(), false),  // Arrow order differs from numbers
      arrow::field("f_int32", arrow::int64()),                // narrowing: checked per value
      arrow::field("f_int64", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("f_uint32", arrow::uint8()),
      arrow::field("f_uint64", arrow::uint64()),
      arrow::field("f_sint32", arrow::int32()),
      arrow::field("f_sint64", arrow::int64()),
      arrow::field("f_fixed32", arrow::uint32()),
      arrow::field("f_fixed64", arrow::date32()),
      arrow::field("f_sfixed32", arrow::int8()),
      arrow::field("f_sfixed64", arrow::int64()),
      arrow::field("f_float", arrow::float16()),
      arrow::field("f_double", arrow::float32()),
      arrow::field("f_bool", arrow::boolean()),
      arrow::field("f_bytes", arrow::fixed_size_binary(4)),
      arrow::field("f_enum_name", arrow::dictionary(arrow::int8(), arrow::utf8())),
      arrow::field("f_enum_number", arrow::int32()),
      arrow::field("f_msg", InnerStruct()),
      arrow::field("f_map", arrow::map(arrow::utf8(), InnerStruct())),
      arrow::field("f_packed", arrow::list(arrow::int64())),
      arrow::field("f_unpacked", arrow::fixed_size_list(arrow::int32(), 2)),
      arrow::field("f_msgs", arrow::large_list(InnerStruct())),
  };
}

TEST(BindArrowSchema, EveryTargetType) {
  auto bound = BindArrowSchema(arrow::Schema(AllTypesColumns()), Parse(kAllTypes));
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  const MessageBinding& m = **bound;
  EXPECT_EQ(m.full_name, "Target");
  ASSERT_EQ(m.fields.size(), 22u);
  // Sorted by field number; arrow_index keeps the column position.
  for (size_t i = 0; i < m.fields.size(); ++i) EXPECT_EQ(m.fields[i].number, static_cast<int>(i + 1));
  EXPECT_EQ(m.fields[0].field_name, "f_int32");
  EXPECT_EQ(m.fields[0].arrow_index, 1);
  EXPECT_EQ(m.fields[13].field_name, "f_string");
  EXPECT_EQ(m.fields[13].arrow_index, 0);
  EXPECT_TRUE(m.fields[13].required);
  EXPECT_EQ(m.fields[4].type, FDP::TYPE_SINT32);
  EXPECT_EQ(m.fields[8].type, FDP::TYPE_SFIXED32);

  const FieldBinding& enum_by_name = m.fields[15];
  ASSERT_NE(enum_by_name.enum_values, nullptr);
  EXPECT_EQ(enum_by_name.enum_values->number_by_name.at("GREEN"), 5);
  EXPECT_EQ(enum_by_name.enum_values->numbers, (std::vector<int32_t>{0, 2, 5}));

  const FieldBinding& msg = m.fields[17];
  ASSERT_NE(msg.message, nullptr);
  EXPECT_EQ(msg.message->full_name, "Target.Inner");
  EXPECT_EQ(msg.message->fields[0].column_path, "f_msg.a");
  EXPECT_TRUE(msg.message->fields[0].required);

  const FieldBinding& map = m.fields[18];
  EXPECT_TRUE(map.is_map);
  EXPECT_TRUE(map.repeated);
  ASSERT_NE(map.message, nullptr);
  ASSERT_EQ(map.message->fields.size(), 2u);
  EXPECT_EQ(map.message->fields[0].column_path, "f_map.key");
  EXPECT_EQ(map.message->fields[0].arrow_index, 0);
  EXPECT_EQ(map.message->fields[1].arrow_index, 1);
  ASSERT_NE(map.message->fields[1].message, nullptr);
  EXPECT_EQ(map.message->fields[1].message->fields[1].column_path, "f_map.value.b");

  EXPECT_TRUE(m.fields[19].repeated);
  EXPECT_TRUE(m.fields[19].packed);
  EXPECT_TRUE(m.fields[20].repeated);
  EXPECT_FALSE(m.fields[20].packed);
  ASSERT_NE(m.fields[21].message, nullptr);
  EXPECT_EQ(m.fields[21].message->fields[1].column_path, "f_msgs.b");
}

TEST(BindArrowSchema, GeneratedDescriptorBindsToItsSchema) {
  arrow::Schema schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("d", arrow::decimal128(10, 2)),
                        arrow::field("tags", arrow::list(arrow::utf8()))});
  auto d = DescriptorFromArrowSchema(schema);
  ASSERT_TRUE(d.ok());
  auto bound = BindArrowSchema(schema, *d);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ((*bound)->fields[1].type, FDP::TYPE_STRING);
  EXPECT_TRUE((*bound)->fields[2].repeated);
}

struct Mismatch {
  const char* name;
  arrow::FieldVector columns;
  std::vector<std::string> expected;
};

TEST(BindArrowSchema, MismatchesAreClearErrors) {
  auto all = AllTypesColumns();
  auto replace = [&](const std::string& name, std::shared_ptr<arrow::DataType> type) {
    auto cols = all;
    for (auto& c : cols) if (c->name() == name) c = arrow::field(name, type);
    return cols;
  };
  auto without = [&](const std::string& name) {
    arrow::FieldVector cols;
    for (auto& c : all) if (c->name() != name) cols.push_back(c);
    return cols;
  };
  auto with_extra = all;
  with_extra.push_back(arrow::field("surprise", arrow::int32()));
  auto missing_nested = replace("f_msg", arrow::struct_({arrow::field("b", arrow::utf8())}));

  const std::vector<Mismatch> cases = {
      {"extra column", with_extra, {"column 'surprise' has no field in message 'Target'"}},
      {"missing required", without("f_string"), {"required field 'Target.f_string' has no column"}},
      {"missing nested required", missing_nested, {"required field 'Target.Inner.a' has no column in 'f_msg'"}},
      {"string into int", replace("f_int32", arrow::utf8()),
       {"column 'f_int32' (string) cannot be written to field 'Target.f_int32' (int32)"}},
      {"float into int", replace("f_int64", arrow::float64()), {"'f_int64' (double)", "(int64)"}},
      {"int into bool", replace("f_bool", arrow::int8()), {"'f_bool' (int8)", "(bool)"}},
      {"int into double", replace("f_double", arrow::int32()), {"'f_double' (int32)", "(double)"}},
      {"bytes into string", replace("f_string", arrow::binary()), {"'f_string' (binary)", "(string)"}},
      {"float into enum", replace("f_enum_name", arrow::float32()), {"'f_enum_name' (float)", "(enum)"}},
      {"int into message", replace("f_msg", arrow::int32()), {"'f_msg' (int32)", "a message field takes a struct"}},
      {"list into scalar", replace("f_int32", arrow::list(arrow::int32())),
       {"'f_int32' (list<item: int32>)", "needs a repeated or map field"}},
      {"scalar into repeated", replace("f_packed", arrow::int64()),
       {"'f_packed' (int64)", "a repeated field takes an Arrow list column"}},
      {"list into map", replace("f_map", arrow::list(arrow::utf8())), {"'f_map'", "a map field takes an Arrow map column"}},
      {"map key type", replace("f_map", arrow::map(arrow::int32(), InnerStruct())),
       {"column 'f_map.key' (int32) cannot be written to field 'Target.FMapEntry.key' (string)"}},
      {"nested type", replace("f_msg", arrow::struct_({arrow::field("a", arrow::utf8())})),
       {"column 'f_msg.a' (string) cannot be written to field 'Target.Inner.a' (int32)"}},
      {"list of lists into repeated", replace("f_packed", arrow::list(arrow::list(arrow::int64()))),
       {"'f_packed'", "list elements cannot be lists or maps"}},
  };
  const DescriptorProto target = Parse(kAllTypes);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto st = BindArrowSchema(arrow::Schema(c.columns), target).status();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(GetErrorKind(st), ErrorKind::kConversion);
    for (const auto& text : c.expected) EXPECT_THAT(st.message(), HasSubstr(text));
  }
}

TEST(BindArrowSchema, InvalidDescriptorIsRefused) {
  auto bad_ref = Parse(R"pb(name: "M" field { name: "x" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".M.Nope" })pb");
  auto st = BindArrowSchema(arrow::Schema({arrow::field("x", InnerStruct())}), bad_ref).status();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("invalid descriptor for message 'M'"));
  EXPECT_THAT(st.message(), HasSubstr("M.Nope"));

  auto dup = Parse(R"pb(name: "M"
    field { name: "x" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "y" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 })pb");
  st = BindArrowSchema(arrow::Schema({arrow::field("x", arrow::int32())}), dup).status();
  EXPECT_THAT(st.message(), HasSubstr("invalid descriptor"));
  EXPECT_THAT(st.message(), HasSubstr("has already been used"));

  st = BindArrowSchema(arrow::Schema(arrow::FieldVector{}), dup).status();
  EXPECT_THAT(st.message(), HasSubstr("no columns"));
}

TEST(ProtoText, RendersGivenDescriptorWithEnumsAndMaps) {
  const std::string text = DescriptorToProtoText(Parse(kAllTypes));
  EXPECT_THAT(text, HasSubstr("message Target {\n  enum Color {\n    RED = 0;\n    GREEN = 5;\n"));
  EXPECT_THAT(text, HasSubstr("  required string f_string = 14;\n"));
  EXPECT_THAT(text, HasSubstr("  optional Target.Color f_enum_name = 16;\n"));
  EXPECT_THAT(text, HasSubstr("  map<string, Target.Inner> f_map = 19;\n"));
  EXPECT_THAT(text, HasSubstr("  repeated int64 f_packed = 20 [packed = true];\n"));
  EXPECT_THAT(text, HasSubstr("  repeated sint32 f_unpacked = 21;\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("FMapEntry")));
}

}  // namespace
}  // namespace arrow_zerobus
