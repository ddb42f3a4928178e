// Arrow schema -> the Delta table columns, DDL and emulator declaration.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {
namespace {

using ::testing::HasSubstr;

TEST(DeltaColumns, TypeTextOfEveryMappedType) {
  struct Case {
    std::shared_ptr<arrow::DataType> type;
    const char* text;
  };
  const std::vector<Case> cases = {
      {arrow::boolean(), "boolean"},
      {arrow::int8(), "tinyint"},
      {arrow::uint8(), "smallint"},
      {arrow::int16(), "smallint"},
      {arrow::uint16(), "int"},
      {arrow::int32(), "int"},
      {arrow::uint32(), "bigint"},
      {arrow::int64(), "bigint"},
      {arrow::uint64(), "bigint"},
      {arrow::float16(), "float"},
      {arrow::float32(), "float"},
      {arrow::float64(), "double"},
      {arrow::large_utf8(), "string"},
      {arrow::fixed_size_binary(3), "binary"},
      {arrow::date64(), "date"},
      {arrow::timestamp(arrow::TimeUnit::NANO, "UTC"), "timestamp"},
      {arrow::timestamp(arrow::TimeUnit::MILLI), "timestamp_ntz"},
      {arrow::decimal64(12, 3), "decimal(12,3)"},
      {arrow::dictionary(arrow::int8(), arrow::utf8()), "string"},
      {arrow::run_end_encoded(arrow::int16(), arrow::float64()), "double"},
      {arrow::extension::json(arrow::utf8()), "variant"},
      {arrow::list(arrow::int16()), "array<smallint>"},
      {arrow::map(arrow::utf8(), arrow::list(arrow::float32())), ""},  // refused: see below
      {arrow::map(arrow::int32(), arrow::utf8()), "map<int,string>"},
      {arrow::struct_({arrow::field("a", arrow::int64(), false), arrow::field("b", arrow::utf8())}),
       "struct<a:bigint not null,b:string>"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type->ToString());
    auto cols = DeltaColumnsFromArrowSchema(arrow::Schema({arrow::field("c", c.type)}));
    if (std::string(c.text).empty()) {
      EXPECT_FALSE(cols.ok());
      continue;
    }
    ASSERT_TRUE(cols.ok()) << cols.status().ToString();
    ASSERT_EQ(cols->size(), 1u);
    EXPECT_EQ((*cols)[0].type_text, c.text);
  }
}

TEST(DeltaColumns, RefusalsNameTheColumn) {
  auto wide = DeltaColumnsFromArrowSchema(arrow::Schema({arrow::field("amount", arrow::decimal256(50, 2))}));
  ASSERT_FALSE(wide.ok());
  EXPECT_THAT(wide.status().message(), HasSubstr("column 'amount'"));
  EXPECT_THAT(wide.status().message(), HasSubstr("at most 38 digits"));
  auto time = DeltaColumnsFromArrowSchema(arrow::Schema({arrow::field("t", arrow::time32(arrow::TimeUnit::SECOND))}));
  EXPECT_THAT(time.status().message(), HasSubstr("column 't'"));
}

TEST(DeltaColumns, DdlAndDeclaration) {
  arrow::Schema schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("tags", arrow::list(arrow::utf8()))});
  auto cols = DeltaColumnsFromArrowSchema(schema);
  ASSERT_TRUE(cols.ok());
  EXPECT_EQ(CreateTableStatement("main.iot.readings", *cols),
            "CREATE TABLE main.iot.readings (\n  id bigint NOT NULL,\n  tags array<string>\n)");
  auto json = nlohmann::json::parse(TableDeclarationJson(*cols));
  ASSERT_EQ(json["columns"].size(), 2u);
  EXPECT_EQ(json["columns"][0]["name"], "id");
  EXPECT_EQ(json["columns"][0]["type"], "bigint");
  EXPECT_EQ(json["columns"][0]["nullable"], false);
  EXPECT_EQ(json["columns"][1]["type"], "array<string>");
  EXPECT_EQ(json["columns"][1]["nullable"], true);
}

}  // namespace
}  // namespace arrow_zerobus
