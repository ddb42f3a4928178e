#include "decode/flight_schema.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include <arrow/array/array_base.h>
#include <arrow/array/data.h>
#include <arrow/array/util.h>
#include <arrow/buffer.h>
#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/checked_cast.h>

#include "decode/column_builder_internal.h"
#include "decode/emulator_status.h"
#include "decode/table_schema.h"

namespace arrow_zerobus::emulator {

namespace {

using arrow::internal::checked_cast;

// Same Arrow type as `want` (a FlightTypeFor result): list element and map entry names are free,
// list element / map value nullability is free (NULLs are checked per value when converting).
bool FlightTypeMatches(const arrow::DataType& got, const arrow::DataType& want) {
  if (got.id() != want.id()) return false;
  switch (want.id()) {
    case arrow::Type::LIST:
      return FlightTypeMatches(*checked_cast<const arrow::ListType&>(got).value_type(),
                               *checked_cast<const arrow::ListType&>(want).value_type());
    case arrow::Type::MAP: {
      const auto& g = checked_cast<const arrow::MapType&>(got);
      const auto& w = checked_cast<const arrow::MapType&>(want);
      return FlightTypeMatches(*g.key_type(), *w.key_type()) &&
             FlightTypeMatches(*g.item_type(), *w.item_type());
    }
    case arrow::Type::STRUCT: {
      if (got.num_fields() != want.num_fields()) return false;
      for (int i = 0; i < want.num_fields(); ++i) {
        const auto& g = *got.field(i);
        const auto& w = *want.field(i);
        if (g.name() != w.name() || g.nullable() != w.nullable() ||
            !FlightTypeMatches(*g.type(), *w.type())) {
          return false;
        }
      }
      return true;
    }
    default:
      return got.Equals(want);  // timestamp unit and zone included
  }
}

std::string Nullability(bool nullable) { return nullable ? "nullable" : "NOT NULL"; }

void AddCause(FlightSchemaCheck* check, const char* cause, std::string problem) {
  if (std::find(check->causes.begin(), check->causes.end(), cause) == check->causes.end()) {
    check->causes.push_back(cause);
  }
  check->problems.push_back(std::move(problem));
}

}  // namespace

std::shared_ptr<arrow::DataType> FlightTypeFor(const std::shared_ptr<arrow::DataType>& table_type) {
  switch (table_type->id()) {
    case arrow::Type::STRING:
    case arrow::Type::DECIMAL128: return arrow::large_utf8();
    case arrow::Type::BINARY: return arrow::large_binary();
    case arrow::Type::LIST: {
      const auto& list = checked_cast<const arrow::ListType&>(*table_type);
      return arrow::list(arrow::field("item", FlightTypeFor(list.value_type()), true));
    }
    case arrow::Type::MAP: {
      const auto& map = checked_cast<const arrow::MapType&>(*table_type);
      return std::make_shared<arrow::MapType>(
          arrow::field("keys", FlightTypeFor(map.key_type()), false),
          arrow::field("values", FlightTypeFor(map.item_type()), true));
    }
    case arrow::Type::STRUCT: {
      arrow::FieldVector fields;
      for (const auto& f : table_type->fields()) {
        fields.push_back(arrow::field(f->name(), FlightTypeFor(f->type()), f->nullable()));
      }
      return arrow::struct_(std::move(fields));
    }
    default:
      return table_type;
  }
}

std::string FlightSchemaCheck::Message(const std::string& table) const {
  std::string out = "Arrow Flight schema validation failed for table '" + table + "': ";
  for (size_t i = 0; i < problems.size(); ++i) out += (i ? "; " : "") + problems[i];
  return out;
}

FlightSchemaCheck CheckFlightSchema(const arrow::Schema& flight, const arrow::Schema& table) {
  FlightSchemaCheck check;
  check.source_of_column.assign(static_cast<size_t>(table.num_fields()), -1);
  std::unordered_map<std::string, int> column_index;
  for (int i = 0; i < table.num_fields(); ++i) column_index.emplace(table.field(i)->name(), i);

  if (flight.num_fields() > table.num_fields()) {
    AddCause(&check, kFieldCountMismatch,
             "the schema has " + std::to_string(flight.num_fields()) + " fields but the table has " +
                 std::to_string(table.num_fields()) + " columns");
  }
  int last_column = -1;
  std::string last_name;
  for (int i = 0; i < flight.num_fields(); ++i) {
    const arrow::Field& field = *flight.field(i);
    auto it = column_index.find(field.name());
    if (it == column_index.end()) {
      AddCause(&check, kFieldNotInTable, "field '" + field.name() + "' is not a column of the table");
      continue;
    }
    int column = it->second;
    if (check.source_of_column[column] >= 0) {
      AddCause(&check, kFieldCountMismatch, "field '" + field.name() + "' appears twice");
      continue;
    }
    check.source_of_column[column] = i;
    if (column < last_column) {
      AddCause(&check, kFieldOutOfOrder,
               "field '" + field.name() + "' comes after '" + last_name +
                   "' but the table has it before (fields must follow the column order)");
    } else {
      last_column = column;
      last_name = field.name();
    }
    const arrow::Field& col = *table.field(column);
    auto want = FlightTypeFor(col.type());
    if (!FlightTypeMatches(*field.type(), *want)) {
      AddCause(&check, kTypeIncompatible,
               "field '" + field.name() + "' has type " + field.type()->ToString() + "; column '" +
                   col.name() + "' (" + TypeText(*col.type()) + ") needs " + want->ToString());
    } else if (field.nullable() != col.nullable()) {
      AddCause(&check, kTypeIncompatible,
               "field '" + field.name() + "' is " + Nullability(field.nullable()) +
                   " but column '" + col.name() + "' is " + Nullability(col.nullable()));
    }
  }
  for (int c = 0; c < table.num_fields(); ++c) {
    const arrow::Field& col = *table.field(c);
    if (check.source_of_column[c] < 0 && !col.nullable()) {
      AddCause(&check, kMissingRequiredColumn,
               "NOT NULL column '" + col.name() + "' (" + TypeText(*col.type()) +
                   ") has no field");
    }
  }
  if (!check.ok()) check.source_of_column.clear();
  return check;
}

// ---- batch conversion ---------------------------------------------------------------------

namespace {

class Converter {
 public:
  explicit Converter(arrow::MemoryPool* pool) : pool_(pool) {}

  // `where` names the position for messages: "column 'a' row " or "column 'a.b' element ".
  arrow::Result<std::shared_ptr<arrow::ArrayData>> Convert(
      const std::shared_ptr<arrow::ArrayData>& src, const std::shared_ptr<arrow::Field>& target,
      const std::string& path, const char* unit) {
    if (!target->nullable() && src->GetNullCount() > 0) {
      return InvalidArgument("column '" + path + "' " + unit + " " +
                             std::to_string(FirstNull(*src)) + ": NULL in a NOT NULL column");
    }
    const auto& type = target->type();
    switch (type->id()) {
      case arrow::Type::STRING:
      case arrow::Type::BINARY:
        return NarrowOffsets(src, type, path);
      case arrow::Type::DECIMAL128:
        return ParseDecimals(*src, target, path, unit);
      case arrow::Type::LIST: {
        const auto& list = checked_cast<const arrow::ListType&>(*type);
        ARROW_ASSIGN_OR_RAISE(auto child, Convert(src->child_data[0], list.value_field(),
                                                  path + ".element", "element"));
        return Rebuild(*src, type, {std::move(child)});
      }
      case arrow::Type::MAP: {
        const auto& map = checked_cast<const arrow::MapType&>(*type);
        const auto& entries = src->child_data[0];
        ARROW_ASSIGN_OR_RAISE(auto key, Convert(entries->child_data[0], map.key_field(),
                                                path + ".key", "entry"));
        ARROW_ASSIGN_OR_RAISE(auto value, Convert(entries->child_data[1], map.item_field(),
                                                  path + ".value", "entry"));
        auto new_entries = Rebuild(*entries, map.value_type(), {std::move(key), std::move(value)});
        return Rebuild(*src, type, {std::move(new_entries)});
      }
      case arrow::Type::STRUCT: {
        std::vector<std::shared_ptr<arrow::ArrayData>> children;
        for (int i = 0; i < type->num_fields(); ++i) {
          const auto& child_field = type->field(i);
          const auto& child = src->child_data[i];
          if (!child_field->nullable() && child->GetNullCount() > 0) {
            // A NULL inside a NULL struct is no value at all; only the others are wrong.
            int64_t row = FirstNullUnder(*src, *child);
            if (row >= 0) {
              return InvalidArgument("column '" + path + "." + child_field->name() + "' " + unit +
                                     " " + std::to_string(row) + ": NULL in a NOT NULL field");
            }
          }
          auto relaxed = child_field->WithNullable(true);
          ARROW_ASSIGN_OR_RAISE(auto converted,
                                Convert(child, relaxed, path + "." + child_field->name(), unit));
          children.push_back(std::move(converted));
        }
        return Rebuild(*src, type, std::move(children));
      }
      default:
        if (!src->type->Equals(*type)) {
          return InvalidArgument("column '" + path + "': type " + src->type->ToString() +
                                 " cannot be stored as " + type->ToString());
        }
        return src;
    }
  }

 private:
  static int64_t FirstNull(const arrow::ArrayData& a) {
    for (int64_t i = 0; i < a.length; ++i) {
      if (!a.IsValid(i)) return i;
    }
    return -1;
  }
  static int64_t FirstNullUnder(const arrow::ArrayData& parent, const arrow::ArrayData& child) {
    for (int64_t i = 0; i < parent.length; ++i) {
      if (parent.IsValid(i) && !child.IsValid(parent.offset + i)) return i;
    }
    return -1;
  }

  static std::shared_ptr<arrow::ArrayData> Rebuild(
      const arrow::ArrayData& src, std::shared_ptr<arrow::DataType> type,
      std::vector<std::shared_ptr<arrow::ArrayData>> children) {
    return arrow::ArrayData::Make(std::move(type), src.length, src.buffers, std::move(children),
                                  src.null_count, src.offset);
  }

  // large_utf8/large_binary -> utf8/binary: new 32-bit offsets, the data buffer shared.
  arrow::Result<std::shared_ptr<arrow::ArrayData>> NarrowOffsets(
      const std::shared_ptr<arrow::ArrayData>& src, const std::shared_ptr<arrow::DataType>& type,
      const std::string& path) {
    if (src->type->id() != arrow::Type::LARGE_STRING &&
        src->type->id() != arrow::Type::LARGE_BINARY) {
      return InvalidArgument("column '" + path + "': type " + src->type->ToString() +
                             " cannot be stored as " + type->ToString());
    }
    const int64_t n = src->length;
    const int64_t* in = src->GetValues<int64_t>(1);  // from src->offset
    const int64_t base = in[0];
    if (in[n] - base > INT32_MAX) {
      return arrow::Status::CapacityError("column '", path, "': more than 2 GiB in one batch");
    }
    // Slots before src->offset stay 0 so the validity bitmap keeps its offset.
    ARROW_ASSIGN_OR_RAISE(auto offsets,
                          arrow::AllocateBuffer((src->offset + n + 1) * sizeof(int32_t), pool_));
    auto* out = reinterpret_cast<int32_t*>(offsets->mutable_data());
    std::fill(out, out + src->offset, 0);
    for (int64_t i = 0; i <= n; ++i) out[src->offset + i] = static_cast<int32_t>(in[i] - base);
    auto data = arrow::SliceBuffer(src->buffers[2], base, in[n] - base);
    return arrow::ArrayData::Make(type, n, {src->buffers[0], std::move(offsets), std::move(data)},
                                  src->null_count, src->offset);
  }

  // Decimal text (large_utf8) -> decimal128(p, s), with the protobuf path's text rules.
  arrow::Result<std::shared_ptr<arrow::ArrayData>> ParseDecimals(
      const arrow::ArrayData& src, const std::shared_ptr<arrow::Field>& target,
      const std::string& path, const char* unit) {
    if (src.type->id() != arrow::Type::LARGE_STRING) {
      return InvalidArgument("column '" + path + "': decimal values must arrive as large_utf8 "
                             "text, got " + src.type->ToString());
    }
    auto column = internal::MakeColumn(target, pool_);
    ARROW_RETURN_NOT_OK(internal::ResetColumn(column.get()));
    const int64_t* offsets = src.GetValues<int64_t>(1);
    const char* chars = src.buffers[2] ? reinterpret_cast<const char*>(src.buffers[2]->data()) : "";
    for (int64_t i = 0; i < src.length; ++i) {
      if (!src.IsValid(i)) {
        ARROW_RETURN_NOT_OK(internal::AppendNull(column.get()));
        continue;
      }
      std::string_view text(chars + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
      arrow::Status st = internal::AppendDecimalText(column.get(), text);
      if (!st.ok()) {
        return InvalidArgument("column '" + path + "' " + unit + " " + std::to_string(i) + ": " +
                               st.message());
      }
    }
    return internal::FinishColumn(column.get());
  }

  arrow::MemoryPool* pool_;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> FlightBatchToTable(
    const arrow::RecordBatch& batch, const std::shared_ptr<arrow::Schema>& table,
    const std::vector<int>& source_of_column) {
  Converter converter(arrow::default_memory_pool());
  std::vector<std::shared_ptr<arrow::ArrayData>> columns;
  columns.reserve(static_cast<size_t>(table->num_fields()));
  for (int c = 0; c < table->num_fields(); ++c) {
    const auto& field = table->field(c);
    int source = source_of_column[static_cast<size_t>(c)];
    if (source < 0) {
      ARROW_ASSIGN_OR_RAISE(auto nulls, arrow::MakeArrayOfNull(field->type(), batch.num_rows()));
      columns.push_back(nulls->data());
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto column,
                          converter.Convert(batch.column_data(source), field, field->name(), "row"));
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(table, batch.num_rows(), std::move(columns));
}

}  // namespace arrow_zerobus::emulator
