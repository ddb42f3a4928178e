// Arrow type classification shared by descriptor generation and binding.
#pragma once

#include <memory>
#include <string>

#include <arrow/status.h>
#include <arrow/type.h>

namespace arrow_zerobus::internal {

// The logical value type a column is written as: dictionary and run-end encoded columns are
// written as their values, extension types as their storage (arrow.json as a string).
std::shared_ptr<arrow::DataType> ValueType(const std::shared_ptr<arrow::DataType>& type);

bool IsJsonExtension(const arrow::DataType& type);
bool IsListLike(arrow::Type::type id);      // list, large_list, list_view, large_list_view, fixed_size_list
bool IsStringLike(arrow::Type::type id);    // utf8, large_utf8, utf8_view
bool IsBinaryLike(arrow::Type::type id);    // binary, large_binary, binary_view, fixed_size_binary
bool IsIntegerType(arrow::Type::type id);
bool IsFloatingType(arrow::Type::type id);
bool IsDecimalType(arrow::Type::type id);
// The element type of a list-like type.
const std::shared_ptr<arrow::Field>& ListValueField(const arrow::DataType& type);

// "[A-Za-z_][A-Za-z0-9_]*"
bool IsValidFieldName(const std::string& name);
// The Conversion error for a column nested deeper than kMaxNestingDepth.
arrow::Status TooDeepError(const std::string& path);
// Field numbers 1..n in column order, skipping the reserved range 19000-19999.
int32_t FieldNumberForIndex(int index);

}  // namespace arrow_zerobus::internal
