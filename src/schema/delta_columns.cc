// Arrow schema -> the Delta table its rows land in.
#include <string>

#include <arrow/type.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {

arrow::Result<std::vector<DeltaColumn>> DeltaColumnsFromArrowSchema(const arrow::Schema& schema) {
  // The descriptor rules (names, refused types, limits) apply to the table as well.
  ARROW_RETURN_NOT_OK(DescriptorFromArrowSchema(schema).status());
  std::vector<DeltaColumn> columns;
  columns.reserve(schema.num_fields());
  for (const auto& f : schema.fields()) {
    ARROW_ASSIGN_OR_RAISE(auto text, DeltaTypeText(f->type(), f->name()));
    columns.push_back({f->name(), std::move(text), f->nullable()});
  }
  return columns;
}

std::string CreateTableStatement(const std::string& table_name,
                                 const std::vector<DeltaColumn>& columns) {
  std::string out = "CREATE TABLE " + table_name + " (\n";
  for (size_t i = 0; i < columns.size(); ++i) {
    // Type keywords are case-insensitive in Databricks SQL; struct field names are not, so the
    // type text is used as is.
    out += "  " + columns[i].name + " " + columns[i].type_text +
           (columns[i].nullable ? "" : " NOT NULL") +
           (i + 1 < columns.size() ? ",\n" : "\n");
  }
  return out + ")";
}

std::string TableDeclarationJson(const std::vector<DeltaColumn>& columns) {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : columns) {
    cols.push_back({{"name", c.name}, {"type", c.type_text}, {"nullable", c.nullable}});
  }
  return nlohmann::json{{"columns", cols}}.dump(2);
}

}  // namespace arrow_zerobus
