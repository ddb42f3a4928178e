#include "decode/column_builder_internal.h"

#include <arrow/util/checked_cast.h>

namespace arrow_zerobus::emulator::internal {

using arrow::internal::checked_cast;

std::unique_ptr<Column> MakeColumn(const std::shared_ptr<arrow::Field>& field,
                                   arrow::MemoryPool* pool) {
  auto column = std::make_unique<Column>(field, pool);
  const auto& type = *field->type();
  column->type_id = type.id();
  column->nullable = field->nullable();
  switch (type.id()) {
    case arrow::Type::BOOL: column->kind = ColumnKind::kBool; break;
    case arrow::Type::INT8: column->width = 1; break;
    case arrow::Type::INT16: column->width = 2; break;
    case arrow::Type::INT32:
    case arrow::Type::DATE32:
    case arrow::Type::FLOAT: column->width = 4; break;
    case arrow::Type::INT64:
    case arrow::Type::DOUBLE:
    case arrow::Type::TIMESTAMP: column->width = 8; break;
    case arrow::Type::DECIMAL128: {
      const auto& dec = checked_cast<const arrow::Decimal128Type&>(type);
      column->width = 16;
      column->precision = dec.precision();
      column->scale = dec.scale();
      break;
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY: column->kind = ColumnKind::kBinary; break;
    case arrow::Type::LIST:
      column->kind = ColumnKind::kList;
      column->children.push_back(
          MakeColumn(checked_cast<const arrow::ListType&>(type).value_field(), pool));
      break;
    case arrow::Type::MAP: {
      const auto& map = checked_cast<const arrow::MapType&>(type);
      column->kind = ColumnKind::kMap;
      column->children.push_back(MakeColumn(map.key_field(), pool));
      column->children.push_back(MakeColumn(map.item_field(), pool));
      break;
    }
    case arrow::Type::STRUCT:
      column->kind = ColumnKind::kStruct;
      for (const auto& child : type.fields()) column->children.push_back(MakeColumn(child, pool));
      break;
    default:
      // Table schemas are validated; other types never reach here.
      column->width = 8;
      break;
  }
  return column;
}

arrow::Status ResetColumn(Column* column) {
  column->length = 0;
  column->null_count = 0;
  column->has_validity = false;
  column->validity.Clear();
  column->values.Clear();
  column->bits.Clear();
  column->offsets.Clear();
  if (column->kind == ColumnKind::kBinary || column->kind == ColumnKind::kList ||
      column->kind == ColumnKind::kMap) {
    ARROW_RETURN_NOT_OK(column->offsets.Append<int32_t>(0));
  }
  for (auto& child : column->children) ARROW_RETURN_NOT_OK(ResetColumn(child.get()));
  return arrow::Status::OK();
}

namespace {

arrow::Status AppendEmptyValue(Column* column) {
  switch (column->kind) {
    case ColumnKind::kBool:
      return column->bits.Append(false);
    case ColumnKind::kFixed:
      return column->values.AppendZeros(column->width);
    case ColumnKind::kBinary:
      return column->offsets.Append<int32_t>(static_cast<int32_t>(column->values.size()));
    case ColumnKind::kList:
    case ColumnKind::kMap:
      return column->offsets.Append<int32_t>(static_cast<int32_t>(column->ChildLength()));
    case ColumnKind::kStruct:
      for (auto& child : column->children) ARROW_RETURN_NOT_OK(AppendNullOrDefault(child.get()));
      return arrow::Status::OK();
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status AppendNull(Column* column) {
  ARROW_RETURN_NOT_OK(AppendEmptyValue(column));
  return column->AppendNullBit();
}

arrow::Status AppendDefault(Column* column) {
  ARROW_RETURN_NOT_OK(AppendEmptyValue(column));
  return column->AppendValid();
}

arrow::Result<std::shared_ptr<arrow::ArrayData>> FinishColumn(Column* column) {
  std::shared_ptr<arrow::Buffer> validity;
  if (column->has_validity) {
    ARROW_ASSIGN_OR_RAISE(validity, column->validity.Finish());
  }
  const int64_t length = column->length;
  const int64_t null_count = column->null_count;
  std::vector<std::shared_ptr<arrow::Buffer>> buffers{validity};
  std::vector<std::shared_ptr<arrow::ArrayData>> children;
  switch (column->kind) {
    case ColumnKind::kBool: {
      ARROW_ASSIGN_OR_RAISE(auto bits, column->bits.Finish());
      buffers.push_back(std::move(bits));
      break;
    }
    case ColumnKind::kFixed: {
      ARROW_ASSIGN_OR_RAISE(auto values, column->values.Finish());
      buffers.push_back(std::move(values));
      break;
    }
    case ColumnKind::kBinary: {
      ARROW_ASSIGN_OR_RAISE(auto offsets, column->offsets.Finish());
      ARROW_ASSIGN_OR_RAISE(auto data, column->values.Finish());
      buffers.push_back(std::move(offsets));
      buffers.push_back(std::move(data));
      break;
    }
    case ColumnKind::kList: {
      ARROW_ASSIGN_OR_RAISE(auto offsets, column->offsets.Finish());
      buffers.push_back(std::move(offsets));
      ARROW_ASSIGN_OR_RAISE(auto child, FinishColumn(column->children[0].get()));
      children.push_back(std::move(child));
      break;
    }
    case ColumnKind::kMap: {
      ARROW_ASSIGN_OR_RAISE(auto offsets, column->offsets.Finish());
      buffers.push_back(std::move(offsets));
      const auto& map = checked_cast<const arrow::MapType&>(*column->field->type());
      int64_t entries = column->children[0]->length;
      ARROW_ASSIGN_OR_RAISE(auto keys, FinishColumn(column->children[0].get()));
      ARROW_ASSIGN_OR_RAISE(auto items, FinishColumn(column->children[1].get()));
      children.push_back(arrow::ArrayData::Make(map.value_type(), entries, {nullptr},
                                                {std::move(keys), std::move(items)}, 0));
      break;
    }
    case ColumnKind::kStruct:
      for (auto& child : column->children) {
        ARROW_ASSIGN_OR_RAISE(auto data, FinishColumn(child.get()));
        children.push_back(std::move(data));
      }
      break;
  }
  auto out = arrow::ArrayData::Make(column->field->type(), length, std::move(buffers),
                                    std::move(children), null_count);
  ARROW_RETURN_NOT_OK(ResetColumn(column));
  return out;
}

arrow::Status AppendDecimalText(Column* column, std::string_view text) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    negative = text[i] == '-';
    ++i;
  }
  unsigned __int128 value = 0;
  int int_digits = 0, frac_digits = 0;
  bool any_digit = false;
  // Integer part (leading zeros do not count towards the precision).
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    any_digit = true;
    if (value == 0 && int_digits == 0 && text[i] == '0') continue;
    if (++int_digits <= 38) value = value * 10 + static_cast<unsigned>(text[i] - '0');
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      any_digit = true;
      if (frac_digits < column->scale) {
        value = value * 10 + static_cast<unsigned>(text[i] - '0');
        ++frac_digits;
      } else if (text[i] != '0') {
        return arrow::Status::Invalid("decimal text '", text, "' has more than ", column->scale,
                                      " digits after the point");
      }
    }
  }
  if (!any_digit || i != text.size()) {
    return arrow::Status::Invalid("'", text, "' is not decimal text (expected e.g. -123.45)");
  }
  if (int_digits > column->precision - column->scale) {
    return arrow::Status::Invalid("decimal text '", text, "' does not fit decimal(",
                                  column->precision, ",", column->scale, ")");
  }
  for (; frac_digits < column->scale; ++frac_digits) value *= 10;
  __int128 signed_value = static_cast<__int128>(value);
  if (negative) signed_value = -signed_value;
  // Arrow's little-endian Decimal128 layout is the native __int128 layout on x86-64/aarch64.
  return column->AppendFixed<__int128>(signed_value);
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace arrow_zerobus::emulator::internal
