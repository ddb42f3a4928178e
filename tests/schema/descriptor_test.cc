// Arrow schema -> DescriptorProto: every row of docs/type-mapping.md, the field rules, refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <arrow/extension/uuid.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "schema/type_support_internal.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;
using FDP = FieldDescriptorProto;

DescriptorProto Generate(const arrow::FieldVector& fields) {
  auto result = DescriptorFromArrowSchema(arrow::Schema(fields));
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ValueOr(DescriptorProto());
}

arrow::Status GenerateError(const arrow::FieldVector& fields) {
  return DescriptorFromArrowSchema(arrow::Schema(fields)).status();
}

const FieldDescriptorProto& OnlyField(const arrow::FieldVector& fields) {
  static DescriptorProto d;
  d = Generate(fields);
  EXPECT_EQ(d.field_size(), 1);
  return d.field(0);
}

struct ScalarCase {
  std::shared_ptr<arrow::DataType> type;
  FDP::Type proto;
};

TEST(DescriptorFromArrow, EveryScalarRow) {
  std::shared_ptr<arrow::DataType> json_type = arrow::extension::json(arrow::utf8());
  const std::vector<ScalarCase> cases = {
      {arrow::boolean(), FDP::TYPE_BOOL},
      {arrow::int8(), FDP::TYPE_INT32},
      {arrow::int16(), FDP::TYPE_INT32},
      {arrow::int32(), FDP::TYPE_INT32},
      {arrow::uint8(), FDP::TYPE_INT32},
      {arrow::uint16(), FDP::TYPE_INT32},
      {arrow::uint32(), FDP::TYPE_INT64},
      {arrow::int64(), FDP::TYPE_INT64},
      {arrow::uint64(), FDP::TYPE_INT64},
      {arrow::float16(), FDP::TYPE_FLOAT},
      {arrow::float32(), FDP::TYPE_FLOAT},
      {arrow::float64(), FDP::TYPE_DOUBLE},
      {arrow::utf8(), FDP::TYPE_STRING},
      {arrow::large_utf8(), FDP::TYPE_STRING},
      {arrow::utf8_view(), FDP::TYPE_STRING},
      {arrow::binary(), FDP::TYPE_BYTES},
      {arrow::large_binary(), FDP::TYPE_BYTES},
      {arrow::binary_view(), FDP::TYPE_BYTES},
      {arrow::fixed_size_binary(7), FDP::TYPE_BYTES},
      {arrow::date32(), FDP::TYPE_INT32},
      {arrow::date64(), FDP::TYPE_INT32},
      {arrow::timestamp(arrow::TimeUnit::SECOND, "UTC"), FDP::TYPE_INT64},
      {arrow::timestamp(arrow::TimeUnit::MILLI, "Europe/Paris"), FDP::TYPE_INT64},
      {arrow::timestamp(arrow::TimeUnit::MICRO), FDP::TYPE_INT64},
      {arrow::timestamp(arrow::TimeUnit::NANO), FDP::TYPE_INT64},
      {arrow::decimal32(9, 2), FDP::TYPE_STRING},
      {arrow::decimal64(18, 4), FDP::TYPE_STRING},
      {arrow::decimal128(38, 10), FDP::TYPE_STRING},
      {arrow::decimal256(76, -3), FDP::TYPE_STRING},
      {arrow::dictionary(arrow::int16(), arrow::utf8()), FDP::TYPE_STRING},
      {arrow::dictionary(arrow::int32(), arrow::float64()), FDP::TYPE_DOUBLE},
      {arrow::run_end_encoded(arrow::int32(), arrow::int64()), FDP::TYPE_INT64},
      {json_type, FDP::TYPE_STRING},
      {arrow::extension::uuid(), FDP::TYPE_BYTES},  // other extensions: as the storage type
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type->ToString());
    const auto& nullable = OnlyField({arrow::field("c", c.type)});
    EXPECT_EQ(nullable.type(), c.proto);
    EXPECT_EQ(nullable.label(), FDP::LABEL_OPTIONAL);
    EXPECT_EQ(nullable.number(), 1);
    EXPECT_EQ(nullable.name(), "c");
    const auto& required = OnlyField({arrow::field("c", c.type, /*nullable=*/false)});
    EXPECT_EQ(required.label(), FDP::LABEL_REQUIRED);
  }
}

TEST(DescriptorFromArrow, ListsOfEveryKindAreRepeated) {
  for (const auto& type : {arrow::list(arrow::int32()), arrow::large_list(arrow::int32()),
                           arrow::list_view(arrow::int32()), arrow::large_list_view(arrow::int32()),
                           arrow::fixed_size_list(arrow::int32(), 3)}) {
    SCOPED_TRACE(type->ToString());
    const auto& f = OnlyField({arrow::field("xs", type, false)});
    EXPECT_EQ(f.label(), FDP::LABEL_REPEATED);
    EXPECT_EQ(f.type(), FDP::TYPE_INT32);
    EXPECT_TRUE(f.options().packed());
  }
  const auto& strings = OnlyField({arrow::field("names", arrow::list(arrow::utf8()))});
  EXPECT_EQ(strings.type(), FDP::TYPE_STRING);
  EXPECT_FALSE(strings.options().has_packed());  // length-delimited types cannot be packed
}

TEST(DescriptorFromArrow, NestedTypesAreQualifiedAtEveryDepth) {
  auto point = arrow::struct_({arrow::field("x", arrow::float64(), false),
                               arrow::field("y", arrow::float64())});
  auto reading = arrow::struct_({arrow::field("at", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                                 arrow::field("where", point)});
  auto d = Generate({
      arrow::field("id", arrow::int64(), false),
      arrow::field("readings", arrow::list(reading)),
      arrow::field("tags", arrow::map(arrow::utf8(), arrow::int64())),
      arrow::field("by_site", arrow::map(arrow::int32(), point)),
  });
  EXPECT_EQ(d.name(), "ArrowRecord");
  ASSERT_EQ(d.field_size(), 4);
  const auto& readings = d.field(1);
  EXPECT_EQ(readings.label(), FDP::LABEL_REPEATED);
  EXPECT_EQ(readings.type(), FDP::TYPE_MESSAGE);
  EXPECT_EQ(readings.type_name(), ".ArrowRecord.Readings");
  // Nested message inside nested message.
  const DescriptorProto* readings_msg = nullptr;
  for (const auto& n : d.nested_type()) if (n.name() == "Readings") readings_msg = &n;
  ASSERT_NE(readings_msg, nullptr);
  ASSERT_EQ(readings_msg->field_size(), 2);
  EXPECT_EQ(readings_msg->field(1).type_name(), ".ArrowRecord.Readings.Where");
  ASSERT_EQ(readings_msg->nested_type_size(), 1);
  EXPECT_EQ(readings_msg->nested_type(0).field(0).label(), FDP::LABEL_REQUIRED);  // x non-null
  EXPECT_EQ(readings_msg->nested_type(0).field(1).label(), FDP::LABEL_OPTIONAL);

  // Map entry: repeated, map_entry set, key = 1, value = 2.
  const auto& tags = d.field(2);
  EXPECT_EQ(tags.label(), FDP::LABEL_REPEATED);
  EXPECT_EQ(tags.type_name(), ".ArrowRecord.TagsEntry");
  const DescriptorProto* entry = nullptr;
  for (const auto& n : d.nested_type()) if (n.name() == "TagsEntry") entry = &n;
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(entry->options().map_entry());
  ASSERT_EQ(entry->field_size(), 2);
  EXPECT_EQ(entry->field(0).name(), "key");
  EXPECT_EQ(entry->field(0).number(), 1);
  EXPECT_EQ(entry->field(0).type(), FDP::TYPE_STRING);
  EXPECT_EQ(entry->field(1).name(), "value");
  EXPECT_EQ(entry->field(1).number(), 2);
  EXPECT_EQ(entry->field(1).type(), FDP::TYPE_INT64);
  // A struct map value's message sits beside the entry (entries may not nest types).
  const auto& by_site = d.field(3);
  EXPECT_EQ(by_site.type_name(), ".ArrowRecord.BySiteEntry");
  for (const auto& n : d.nested_type()) {
    if (n.name() == "BySiteEntry") {
      EXPECT_EQ(n.nested_type_size(), 0);
      EXPECT_EQ(n.field(1).type_name(), ".ArrowRecord.BySiteValue");
    }
  }
  // The descriptor is valid protobuf: binding builds it in a pool.
  arrow::Schema schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("readings", arrow::list(reading)),
                        arrow::field("tags", arrow::map(arrow::utf8(), arrow::int64())),
                        arrow::field("by_site", arrow::map(arrow::int32(), point))});
  auto bound = BindArrowSchema(schema, d);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_TRUE((*bound)->fields[2].is_map);
}

TEST(DescriptorFromArrow, NestedNamesNeverCollideWithFields) {
  auto s = arrow::struct_({arrow::field("a", arrow::int32())});
  // Column "Inner" would collide with the message generated for struct column "inner".
  arrow::Schema schema({arrow::field("inner", s), arrow::field("Inner", arrow::int32())});
  auto d = DescriptorFromArrowSchema(schema);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->field(0).type_name(), ".ArrowRecord.Inner2");
  EXPECT_TRUE(BindArrowSchema(schema, *d).ok());
}

TEST(DescriptorFromArrow, RefusedTypesNameColumnAndType) {
  struct Refused {
    std::shared_ptr<arrow::DataType> type;
    const char* why;
  };
  const std::vector<Refused> cases = {
      {arrow::null(), "null-typed"},
      {arrow::time32(arrow::TimeUnit::SECOND), "TIME"},
      {arrow::time64(arrow::TimeUnit::NANO), "TIME"},
      {arrow::duration(arrow::TimeUnit::MILLI), "durations"},
      {arrow::month_interval(), "intervals"},
      {arrow::day_time_interval(), "intervals"},
      {arrow::month_day_nano_interval(), "intervals"},
      {arrow::sparse_union({arrow::field("a", arrow::int32())}), "unions"},
      {arrow::dense_union({arrow::field("a", arrow::int32())}), "unions"},
      {arrow::list(arrow::list(arrow::int32())), "lists of lists"},
      {arrow::list(arrow::map(arrow::utf8(), arrow::int32())), "lists of maps"},
      {arrow::map(arrow::float64(), arrow::int32()), "map keys"},
      {arrow::map(arrow::utf8(), arrow::list(arrow::int32())), "map values"},
      {arrow::struct_({}), "at least one field"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type->ToString());
    auto st = GenerateError({arrow::field("ok", arrow::int32()),
                             arrow::field("outer", arrow::struct_({arrow::field("bad", c.type)}))});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(GetErrorKind(st), ErrorKind::kConversion);
    EXPECT_THAT(st.message(), HasSubstr("column 'outer.bad'"));
    EXPECT_THAT(st.message(), HasSubstr(c.type->ToString()));
    EXPECT_THAT(st.message(), HasSubstr(c.why));
  }
}

TEST(DescriptorFromArrow, NameRule) {
  for (const char* bad : {"has-dash", "1starts_with_digit", "has space", "", "ünïcode"}) {
    SCOPED_TRACE(bad);
    auto st = GenerateError({arrow::field(bad, arrow::int32())});
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(st.message(), HasSubstr("name '" + std::string(bad) + "'"));
  }
  auto nested = GenerateError(
      {arrow::field("s", arrow::struct_({arrow::field("bad.name", arrow::int32())}))});
  EXPECT_THAT(nested.message(), HasSubstr("column 's.bad.name'"));
  EXPECT_TRUE(DescriptorFromArrowSchema(arrow::Schema({arrow::field("_ok_9", arrow::int8())})).ok());
}

TEST(DescriptorFromArrow, FieldNumbersSkipReservedRange) {
  EXPECT_EQ(internal::FieldNumberForIndex(0), 1);
  EXPECT_EQ(internal::FieldNumberForIndex(18998), 18999);
  EXPECT_EQ(internal::FieldNumberForIndex(18999), 20000);
  // A struct is not bound by the 2000-column limit, so its children can reach the range.
  arrow::FieldVector children;
  for (int i = 0; i < 19002; ++i) children.push_back(arrow::field("f" + std::to_string(i), arrow::int32()));
  arrow::Schema schema({arrow::field("wide", arrow::struct_(children))});
  auto d = DescriptorFromArrowSchema(schema);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const auto& wide = d->nested_type(0);
  EXPECT_EQ(wide.field(18998).number(), 18999);
  EXPECT_EQ(wide.field(18999).number(), 20000);
  EXPECT_EQ(wide.field(19001).number(), 20002);
  EXPECT_TRUE(BindArrowSchema(schema, *d).ok());  // protobuf accepts the numbers
}

TEST(DescriptorFromArrow, ColumnAndDepthLimits) {
  arrow::FieldVector cols;
  for (int i = 0; i < kMaxColumns; ++i) cols.push_back(arrow::field("c" + std::to_string(i), arrow::int32()));
  EXPECT_TRUE(DescriptorFromArrowSchema(arrow::Schema(cols)).ok());
  cols.push_back(arrow::field("one_too_many", arrow::int32()));
  auto st = DescriptorFromArrowSchema(arrow::Schema(cols)).status();
  EXPECT_THAT(st.message(), HasSubstr("2001 columns"));
  EXPECT_THAT(st.message(), HasSubstr("at most 2000"));

  auto nest = [](int levels) {
    std::shared_ptr<arrow::DataType> t = arrow::int32();
    for (int i = 0; i < levels; ++i) t = arrow::struct_({arrow::field("n", t)});
    return arrow::Schema({arrow::field("root", t)});
  };
  EXPECT_TRUE(DescriptorFromArrowSchema(nest(kMaxNestingDepth - 1)).ok());
  auto deep = DescriptorFromArrowSchema(nest(kMaxNestingDepth + 1)).status();
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep.message(), HasSubstr("deeper than 100"));

  auto empty = DescriptorFromArrowSchema(arrow::Schema(arrow::FieldVector{})).status();
  EXPECT_THAT(empty.message(), HasSubstr("no columns"));
}

TEST(DescriptorFromArrow, MessageNameOption) {
  DescriptorOptions options;
  options.message_name = "SensorRow";
  auto d = DescriptorFromArrowSchema(
      arrow::Schema({arrow::field("s", arrow::struct_({arrow::field("a", arrow::int8())}))}),
      options);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->name(), "SensorRow");
  EXPECT_EQ(d->field(0).type_name(), ".SensorRow.S");
  options.message_name = "not valid";
  auto bad = DescriptorFromArrowSchema(arrow::Schema({arrow::field("a", arrow::int8())}), options);
  EXPECT_EQ(GetErrorKind(bad.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(bad.status().message(), HasSubstr("message name 'not valid'"));
}

TEST(ProtoText, RendersReadableProto2) {
  auto d = Generate({
      arrow::field("id", arrow::int64(), false),
      arrow::field("name", arrow::utf8()),
      arrow::field("xs", arrow::list(arrow::int32())),
      arrow::field("tags", arrow::map(arrow::utf8(), arrow::float64())),
      arrow::field("pos", arrow::struct_({arrow::field("lat", arrow::float64(), false)})),
  });
  EXPECT_EQ(DescriptorToProtoText(d),
            "syntax = \"proto2\";\n"
            "\n"
            "message ArrowRecord {\n"
            "  message Pos {\n"
            "    required double lat = 1;\n"
            "  }\n"
            "  required int64 id = 1;\n"
            "  optional string name = 2;\n"
            "  repeated int32 xs = 3 [packed = true];\n"
            "  map<string, double> tags = 4;\n"
            "  optional ArrowRecord.Pos pos = 5;\n"
            "}\n");
}

}  // namespace
}  // namespace arrow_zerobus
