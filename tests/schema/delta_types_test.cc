// The shared type-text parser/renderer and proto type names (delta_types.h, schema.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/type.h>

#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;

TEST(DeltaTypes, ParsedTypesRenderBackToTheirText) {
  for (const char* text : {"bigint", "boolean", "array<int>", "struct<a:int,b:string not null>",
                           "map<string,array<double>>", "decimal(38,10)", "timestamp_ntz",
                           "timestamp", "date", "binary", "struct<x:map<int,struct<y:binary>>>"}) {
    auto type = ParseDeltaTypeText(text);
    ASSERT_TRUE(type.ok()) << text << ": " << type.status().ToString();
    auto rendered = DeltaTypeText(*type, "c");
    ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
    EXPECT_EQ(*rendered, text);
  }
}

TEST(DeltaTypes, UnknownAndUnsupportedTypesAreTold) {
  auto unknown = ParseDeltaTypeText("bignum");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(GetErrorKind(unknown.status()), ErrorKind::kConversion);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown type 'bignum'"));
  auto unsupported = ParseDeltaTypeText("interval day");
  ASSERT_FALSE(unsupported.ok());
  EXPECT_THAT(unsupported.status().message(), HasSubstr("unsupported type 'interval'"));
}

TEST(DeltaTypes, StrictNamesAppliesTheTableRules) {
  TypeTextOptions strict = TypeTextOptions::Defaults();
  strict.strict_names = true;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"struct<`b c`:int>", "bad struct field name 'b c'"},
      {"struct<a:int,A:int>", "duplicate struct field 'A'"},
      {"map<struct<a:int>,int>", "map keys must be a primitive type"},
  };
  for (const auto& [text, message] : cases) {
    // Accepted as Unity Catalog text, refused under the table rules.
    EXPECT_TRUE(ParseDeltaTypeText(text).ok()) << text;
    auto strict_result = ParseDeltaTypeText(text, strict);
    ASSERT_FALSE(strict_result.ok()) << text;
    EXPECT_THAT(strict_result.status().message(), HasSubstr(message)) << text;
  }
}

TEST(DeltaTypes, RendererNamesTheColumnOfAnUnsupportedType) {
  auto too_wide = DeltaTypeText(arrow::decimal256(40, 2), "price");
  ASSERT_FALSE(too_wide.ok());
  EXPECT_THAT(too_wide.status().message(), HasSubstr("column 'price'"));
  EXPECT_THAT(too_wide.status().message(), HasSubstr("at most 38 digits"));
  auto interval = DeltaTypeText(arrow::month_interval(), "span");
  ASSERT_FALSE(interval.ok());
  EXPECT_THAT(interval.status().message(), HasSubstr("column 'span' has unsupported type"));
}

TEST(ProtoTypeNameTest, NamesEveryFieldType) {
  EXPECT_EQ(ProtoTypeName(FieldDescriptorProto::TYPE_SFIXED32), "sfixed32");
  EXPECT_EQ(ProtoTypeName(FieldDescriptorProto::TYPE_BYTES), "bytes");
  EXPECT_EQ(ProtoTypeName(FieldDescriptorProto::TYPE_MESSAGE), "message");
  EXPECT_EQ(ProtoTypeName(FieldDescriptorProto::TYPE_ENUM), "enum");
  EXPECT_EQ(ProtoTypeName(static_cast<FieldDescriptorProto::Type>(0)), "unknown");
}

}  // namespace
}  // namespace arrow_zerobus
