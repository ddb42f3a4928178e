#include "schema/type_support_internal.h"

#include <arrow/extension_type.h>
#include <arrow/type_traits.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"

namespace arrow_zerobus::internal {

std::shared_ptr<arrow::DataType> ValueType(const std::shared_ptr<arrow::DataType>& type) {
  switch (type->id()) {
    case arrow::Type::DICTIONARY:
      return ValueType(static_cast<const arrow::DictionaryType&>(*type).value_type());
    case arrow::Type::RUN_END_ENCODED:
      return ValueType(static_cast<const arrow::RunEndEncodedType&>(*type).value_type());
    case arrow::Type::EXTENSION: {
      if (IsJsonExtension(*type)) return arrow::utf8();
      return ValueType(static_cast<const arrow::ExtensionType&>(*type).storage_type());
    }
    default:
      return type;
  }
}

bool IsJsonExtension(const arrow::DataType& type) {
  return type.id() == arrow::Type::EXTENSION &&
         static_cast<const arrow::ExtensionType&>(type).extension_name() == "arrow.json";
}

bool IsListLike(arrow::Type::type id) {
  return id == arrow::Type::LIST || id == arrow::Type::LARGE_LIST ||
         id == arrow::Type::LIST_VIEW || id == arrow::Type::LARGE_LIST_VIEW ||
         id == arrow::Type::FIXED_SIZE_LIST;
}

bool IsStringLike(arrow::Type::type id) {
  return id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING ||
         id == arrow::Type::STRING_VIEW;
}

bool IsBinaryLike(arrow::Type::type id) {
  return id == arrow::Type::BINARY || id == arrow::Type::LARGE_BINARY ||
         id == arrow::Type::BINARY_VIEW || id == arrow::Type::FIXED_SIZE_BINARY;
}

bool IsIntegerType(arrow::Type::type id) { return arrow::is_integer(id); }

bool IsFloatingType(arrow::Type::type id) { return arrow::is_floating(id); }

bool IsDecimalType(arrow::Type::type id) { return arrow::is_decimal(id); }

const std::shared_ptr<arrow::Field>& ListValueField(const arrow::DataType& type) {
  return type.field(0);
}

bool IsValidFieldName(const std::string& name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

arrow::Status TooDeepError(const std::string& path) {
  return ConversionError("column '" + path + "' is nested deeper than " +
                         std::to_string(kMaxNestingDepth) + " levels");
}

int32_t FieldNumberForIndex(int index) {
  int32_t number = index + 1;
  if (number >= 19000) number += 1000;  // skip the range protobuf reserves for itself
  return number;
}

}  // namespace arrow_zerobus::internal
