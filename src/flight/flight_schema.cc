// The Flight schema of a Delta table (zerobus-arrow-flight.md section 4, type table).
#include "arrow_zerobus/flight_schema.h"

#include <arrow/api.h>

#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/errors.h"

namespace arrow_zerobus {

arrow::Result<std::shared_ptr<arrow::DataType>> FlightTypeForTableType(
    const std::shared_ptr<arrow::DataType>& table_type, const std::string& path) {
  switch (table_type->id()) {
    case arrow::Type::BOOL:
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::DATE32:
      return table_type;
    // The service takes decimals as text: it does not accept Decimal128 yet (fact sheet).
    case arrow::Type::STRING:
    case arrow::Type::DECIMAL128:
      return arrow::large_utf8();
    case arrow::Type::BINARY:
      return arrow::large_binary();
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(*table_type);
      if (ts.unit() == arrow::TimeUnit::MICRO) {
        return ts.timezone().empty() ? arrow::timestamp(arrow::TimeUnit::MICRO)
                                     : arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
      }
      break;
    }
    case arrow::Type::LIST: {
      const auto& value = static_cast<const arrow::ListType&>(*table_type).value_field();
      ARROW_ASSIGN_OR_RAISE(auto item, FlightTypeForTableType(value->type(), path + ".item"));
      return arrow::list(arrow::field("item", std::move(item), value->nullable()));
    }
    case arrow::Type::MAP: {
      const auto& map = static_cast<const arrow::MapType&>(*table_type);
      ARROW_ASSIGN_OR_RAISE(auto key, FlightTypeForTableType(map.key_type(), path + ".key"));
      ARROW_ASSIGN_OR_RAISE(auto value,
                            FlightTypeForTableType(map.item_type(), path + ".value"));
      // Entry names as the vendor declares them: entries{keys, values}.
      auto entries = arrow::struct_({arrow::field("keys", std::move(key), false),
                                     arrow::field("values", std::move(value),
                                                  map.item_field()->nullable())});
      return arrow::MapType::Make(arrow::field("entries", std::move(entries), false));
    }
    case arrow::Type::STRUCT: {
      arrow::FieldVector children;
      for (const auto& child : table_type->fields()) {
        ARROW_ASSIGN_OR_RAISE(auto type,
                              FlightTypeForTableType(child->type(), path + "." + child->name()));
        children.push_back(arrow::field(child->name(), std::move(type), child->nullable()));
      }
      return arrow::struct_(std::move(children));
    }
    default:
      break;
  }
  return ConversionError("column '" + path + "': table type " + table_type->ToString() +
                         " has no Arrow Flight type (expected the Delta types of "
                         "ParseDeltaTypeText)");
}

arrow::Result<FlightTarget> FlightTargetForTableSchema(
    std::shared_ptr<arrow::Schema> table_schema) {
  if (table_schema == nullptr || table_schema->num_fields() == 0) {
    return ConversionError("the table has no columns");
  }
  arrow::FieldVector fields;
  fields.reserve(table_schema->num_fields());
  for (const auto& f : table_schema->fields()) {
    ARROW_ASSIGN_OR_RAISE(auto type, FlightTypeForTableType(f->type(), f->name()));
    fields.push_back(arrow::field(f->name(), std::move(type), f->nullable()));
  }
  FlightTarget target;
  target.table_schema = std::move(table_schema);
  target.flight_schema = arrow::schema(std::move(fields));
  return target;
}

arrow::Result<FlightTarget> FlightTargetForDeltaColumns(const std::vector<DeltaColumn>& columns) {
  arrow::FieldVector fields;
  fields.reserve(columns.size());
  for (const auto& c : columns) {
    auto type = ParseDeltaTypeText(c.type_text);
    if (!type.ok()) {
      return ConversionError("column '" + c.name + "': " + type.status().message());
    }
    fields.push_back(arrow::field(c.name, type.MoveValueUnsafe(), c.nullable));
  }
  return FlightTargetForTableSchema(arrow::schema(std::move(fields)));
}

arrow::Result<FlightTarget> FlightTargetForArrowSchema(const arrow::Schema& input) {
  ARROW_ASSIGN_OR_RAISE(const auto columns, DeltaColumnsFromArrowSchema(input));
  return FlightTargetForDeltaColumns(columns);
}

}  // namespace arrow_zerobus
