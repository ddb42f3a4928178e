// Arrow schema -> the Delta table its rows land in.
#include <string>

#include <arrow/type.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "schema/type_support_internal.h"

namespace arrow_zerobus {

namespace {

using internal::ValueType;

arrow::Result<std::string> TypeText(const std::shared_ptr<arrow::DataType>& declared,
                                    const std::string& path) {
  if (internal::IsJsonExtension(*declared)) return std::string("variant");
  const auto type = ValueType(declared);
  using T = arrow::Type;
  switch (type->id()) {
    case T::BOOL: return std::string("boolean");
    case T::INT8: return std::string("tinyint");
    case T::INT16:
    case T::UINT8: return std::string("smallint");
    case T::INT32:
    case T::UINT16: return std::string("int");
    case T::INT64:
    case T::UINT32:
    case T::UINT64: return std::string("bigint");
    case T::HALF_FLOAT:
    case T::FLOAT: return std::string("float");
    case T::DOUBLE: return std::string("double");
    case T::STRING:
    case T::LARGE_STRING:
    case T::STRING_VIEW: return std::string("string");
    case T::BINARY:
    case T::LARGE_BINARY:
    case T::BINARY_VIEW:
    case T::FIXED_SIZE_BINARY: return std::string("binary");
    case T::DATE32:
    case T::DATE64: return std::string("date");
    case T::TIMESTAMP:
      return std::string(static_cast<const arrow::TimestampType&>(*type).timezone().empty()
                             ? "timestamp_ntz"
                             : "timestamp");
    case T::DECIMAL32:
    case T::DECIMAL64:
    case T::DECIMAL128:
    case T::DECIMAL256: {
      const auto& dec = static_cast<const arrow::DecimalType&>(*type);
      if (dec.precision() > 38) {
        return ConversionError("column '" + path + "' (" + type->ToString() +
                               "): Delta decimals hold at most 38 digits");
      }
      return "decimal(" + std::to_string(dec.precision()) + "," + std::to_string(dec.scale()) + ")";
    }
    case T::LIST:
    case T::LARGE_LIST:
    case T::LIST_VIEW:
    case T::LARGE_LIST_VIEW:
    case T::FIXED_SIZE_LIST: {
      ARROW_ASSIGN_OR_RAISE(auto element,
                            TypeText(internal::ListValueField(*type)->type(), path));
      return "array<" + element + ">";
    }
    case T::MAP: {
      const auto& map = static_cast<const arrow::MapType&>(*type);
      ARROW_ASSIGN_OR_RAISE(auto key, TypeText(map.key_type(), path + ".key"));
      ARROW_ASSIGN_OR_RAISE(auto value, TypeText(map.item_type(), path + ".value"));
      return "map<" + key + "," + value + ">";
    }
    case T::STRUCT: {
      std::string out = "struct<";
      for (int i = 0; i < type->num_fields(); ++i) {
        const auto& child = type->field(i);
        ARROW_ASSIGN_OR_RAISE(auto text, TypeText(child->type(), path + "." + child->name()));
        if (i > 0) out += ",";
        out += child->name() + ":" + text;
        if (!child->nullable()) out += " not null";
      }
      return out + ">";
    }
    default:
      return ConversionError("column '" + path + "' has unsupported type " + type->ToString());
  }
}

}  // namespace

arrow::Result<std::vector<DeltaColumn>> DeltaColumnsFromArrowSchema(const arrow::Schema& schema) {
  // The descriptor rules (names, refused types, limits) apply to the table as well.
  ARROW_RETURN_NOT_OK(DescriptorFromArrowSchema(schema).status());
  std::vector<DeltaColumn> columns;
  columns.reserve(schema.num_fields());
  for (const auto& f : schema.fields()) {
    ARROW_ASSIGN_OR_RAISE(auto text, TypeText(f->type(), f->name()));
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
