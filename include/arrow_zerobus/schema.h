// Arrow schema <-> protobuf descriptor: generation (type-mapping.md), binding an Arrow schema to
// a caller-supplied descriptor, and rendering a descriptor as .proto text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <google/protobuf/descriptor.pb.h>

namespace arrow_zerobus {

using google::protobuf::DescriptorProto;
using google::protobuf::FieldDescriptorProto;

inline constexpr int kMaxColumns = 2000;
inline constexpr int kMaxNestingDepth = 100;

struct DescriptorOptions {
  // Name of the root message; nested types are named after their column and qualified from it.
  std::string message_name = "ArrowRecord";
  static DescriptorOptions Defaults() { return DescriptorOptions(); }
};

// The descriptor Zerobus receives for rows of `schema` (type-mapping.md). Refused types, bad
// names, too many columns or too deep nesting give a Conversion error naming the column path.
arrow::Result<DescriptorProto> DescriptorFromArrowSchema(
    const arrow::Schema& schema, const DescriptorOptions& options = DescriptorOptions::Defaults());

// Readable proto2 text of a descriptor (one message with its nested types), for users to see
// what is sent. Not guaranteed to round-trip comments or options other than map_entry/packed.
std::string DescriptorToProtoText(const DescriptorProto& descriptor);

// The .proto name of a field type: "int64", "sfixed32", "string", "bytes", ..., and "message",
// "enum", "group" for those kinds ("unknown" for a value outside the enum).
std::string_view ProtoTypeName(FieldDescriptorProto::Type type);

// ---------------------------------------------------------------------------------------------
// The Delta table rows of a schema land in (type-mapping.md, third column). Zerobus does not
// create tables, so users create this one first; the emulator can be given it as a declaration.

struct DeltaColumn {
  std::string name;
  std::string type_text;  // Unity Catalog type text: "bigint", "array<string>", "decimal(8,2)"
  bool nullable = true;
};

// One column per top-level field. Fails like DescriptorFromArrowSchema, and for decimals with
// a precision over 38 (Delta's maximum).
arrow::Result<std::vector<DeltaColumn>> DeltaColumnsFromArrowSchema(const arrow::Schema& schema);

// "CREATE TABLE catalog.schema.table (\n  id bigint NOT NULL,\n  ...\n)": the DDL to run in a
// Databricks SQL editor before streaming.
std::string CreateTableStatement(const std::string& table_name,
                                 const std::vector<DeltaColumn>& columns);

// {"columns": [{"name": ..., "type": ..., "nullable": ...}, ...]}: the emulator's table
// declaration format (docs/emulator.md).
std::string TableDeclarationJson(const std::vector<DeltaColumn>& columns);

// ---------------------------------------------------------------------------------------------
// Binding: which proto field each Arrow column (at every depth) is written to. The encoder is
// planned from a binding; it is built either from a generated descriptor or a given one.

struct MessageBinding;

struct EnumBinding {
  std::unordered_map<std::string, int32_t> number_by_name;
  std::vector<int32_t> numbers;  // the defined numbers, sorted (proto2 enums are closed)
};

// One Arrow value position bound to one proto field.
struct FieldBinding {
  // Dotted path for messages, e.g. "readings.item.value" / "tags.key".
  std::string column_path;
  // Index of this column among its parent's children (schema fields, struct children, or
  // 0 = key / 1 = value of a map entry).
  int arrow_index = 0;
  std::shared_ptr<arrow::Field> arrow_field;
  // The proto field.
  std::string field_name;
  int32_t number = 0;
  FieldDescriptorProto::Type type = FieldDescriptorProto::TYPE_INT64;
  bool required = false;  // proto2 required: a null fails the row
  bool repeated = false;  // Arrow list (or map) written as a repeated field
  bool packed = false;    // repeated scalar written packed
  bool is_map = false;    // Arrow map written as repeated map-entry messages
  // TYPE_MESSAGE: the nested message (struct, list element struct, or map entry).
  std::shared_ptr<const MessageBinding> message;
  // TYPE_ENUM: the allowed values.
  std::shared_ptr<const EnumBinding> enum_values;
};

struct MessageBinding {
  std::string full_name;              // fully qualified, e.g. "ArrowRecord.readings"
  // One per Arrow child, sorted by field number: the order the encoder writes them in.
  std::vector<FieldBinding> fields;
};

// Binds `schema` to `descriptor` by column name at every depth. Errors (Conversion kind) before
// any row is encoded: a column with no field, a required field with no column, an Arrow type that
// cannot be written into the field's type, list into non-repeated and the reverse. Each message
// names the column path, the Arrow type and the field.
arrow::Result<std::shared_ptr<const MessageBinding>> BindArrowSchema(
    const arrow::Schema& schema, const DescriptorProto& descriptor);

}  // namespace arrow_zerobus
