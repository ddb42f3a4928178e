#include "decode/table_schema.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <arrow/type.h>
#include <arrow/util/checked_cast.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/delta_types.h"
#include "decode/emulator_status.h"
#include "decode/schema_binding_internal.h"

namespace arrow_zerobus::emulator {

using arrow::internal::checked_cast;
using google::protobuf::EnumDescriptorProto;
using google::protobuf::FieldDescriptorProto;
using json = nlohmann::json;

namespace {

constexpr int kMaxColumns = 2000;
constexpr int kMaxDepth = 100;

bool IsValidName(std::string_view name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::shared_ptr<arrow::DataType> ListOf(std::shared_ptr<arrow::DataType> element, bool nullable) {
  return arrow::list(arrow::field("element", std::move(element), nullable));
}

std::shared_ptr<arrow::DataType> MapOf(std::shared_ptr<arrow::DataType> key,
                                       std::shared_ptr<arrow::DataType> value, bool nullable) {
  return std::make_shared<arrow::MapType>(std::move(key),
                                          arrow::field("value", std::move(value), nullable));
}

// --- normalization ------------------------------------------------------------------------------

arrow::Result<std::shared_ptr<arrow::DataType>> NormalizeType(const arrow::DataType& type,
                                                              const std::string& path, int depth) {
  if (depth > kMaxDepth) return InvalidArgument("column '" + path + "': nesting deeper than 100");
  auto unsupported = [&]() {
    return InvalidArgument("column '" + path + "': type " + type.ToString() +
                           " cannot be a Delta table column");
  };
  switch (type.id()) {
    case arrow::Type::BOOL: return arrow::boolean();
    case arrow::Type::INT8: return arrow::int8();
    case arrow::Type::INT16: return arrow::int16();
    case arrow::Type::INT32: return arrow::int32();
    case arrow::Type::INT64: return arrow::int64();
    case arrow::Type::FLOAT: return arrow::float32();
    case arrow::Type::DOUBLE: return arrow::float64();
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW: return arrow::utf8();
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW: return arrow::binary();
    case arrow::Type::DATE32:
    case arrow::Type::DATE64: return arrow::date32();
    case arrow::Type::TIMESTAMP: {
      const auto& ts = checked_cast<const arrow::TimestampType&>(type);
      return ts.timezone().empty() ? arrow::timestamp(arrow::TimeUnit::MICRO)
                                   : arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    }
    case arrow::Type::DECIMAL32:
    case arrow::Type::DECIMAL64:
    case arrow::Type::DECIMAL128:
    case arrow::Type::DECIMAL256: {
      const auto& dec = checked_cast<const arrow::DecimalType&>(type);
      if (dec.precision() > 38) return unsupported();
      return arrow::decimal128(dec.precision(), dec.scale());
    }
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST: {
      const auto& value_field = *checked_cast<const arrow::BaseListType&>(type).value_field();
      ARROW_ASSIGN_OR_RAISE(auto element,
                            NormalizeType(*value_field.type(), path + ".element", depth + 1));
      return ListOf(element, value_field.nullable());
    }
    case arrow::Type::MAP: {
      const auto& map = checked_cast<const arrow::MapType&>(type);
      ARROW_ASSIGN_OR_RAISE(auto key, NormalizeType(*map.key_type(), path + ".key", depth + 1));
      if (key->id() == arrow::Type::LIST || key->id() == arrow::Type::MAP ||
          key->id() == arrow::Type::STRUCT) {
        return InvalidArgument("column '" + path + "': map keys must be a primitive type");
      }
      ARROW_ASSIGN_OR_RAISE(auto value,
                            NormalizeType(*map.item_type(), path + ".value", depth + 1));
      return MapOf(key, value, map.item_field()->nullable());
    }
    case arrow::Type::STRUCT: {
      arrow::FieldVector fields;
      std::unordered_set<std::string> names;
      for (const auto& child : type.fields()) {
        std::string child_path = path + "." + child->name();
        if (!IsValidName(child->name())) {
          return InvalidArgument("column '" + child_path +
                                 "': names must match [A-Za-z_][A-Za-z0-9_]*");
        }
        if (!names.insert(Lower(child->name())).second) {
          return InvalidArgument("column '" + child_path + "' appears twice");
        }
        ARROW_ASSIGN_OR_RAISE(auto child_type, NormalizeType(*child->type(), child_path, depth + 1));
        fields.push_back(arrow::field(child->name(), child_type, child->nullable()));
      }
      return arrow::struct_(std::move(fields));
    }
    default:
      return unsupported();
  }
}

// --- Delta JSON ----------------------------------------------------------------------------------

json DeltaTypeJson(const arrow::DataType& type);

json DeltaFieldJson(const arrow::Field& field) {
  return json{{"name", field.name()},
              {"type", DeltaTypeJson(*field.type())},
              {"nullable", field.nullable()},
              {"metadata", json::object()}};
}

json DeltaTypeJson(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL: return "boolean";
    case arrow::Type::INT8: return "byte";
    case arrow::Type::INT16: return "short";
    case arrow::Type::INT32: return "integer";
    case arrow::Type::INT64: return "long";
    case arrow::Type::FLOAT: return "float";
    case arrow::Type::DOUBLE: return "double";
    case arrow::Type::STRING: return "string";
    case arrow::Type::BINARY: return "binary";
    case arrow::Type::DATE32: return "date";
    case arrow::Type::TIMESTAMP:
      return checked_cast<const arrow::TimestampType&>(type).timezone().empty() ? "timestamp_ntz"
                                                                                 : "timestamp";
    case arrow::Type::DECIMAL128: {
      const auto& dec = checked_cast<const arrow::Decimal128Type&>(type);
      return "decimal(" + std::to_string(dec.precision()) + "," + std::to_string(dec.scale()) + ")";
    }
    case arrow::Type::LIST: {
      const auto& field = *checked_cast<const arrow::ListType&>(type).value_field();
      return json{{"type", "array"},
                  {"elementType", DeltaTypeJson(*field.type())},
                  {"containsNull", field.nullable()}};
    }
    case arrow::Type::MAP: {
      const auto& map = checked_cast<const arrow::MapType&>(type);
      return json{{"type", "map"},
                  {"keyType", DeltaTypeJson(*map.key_type())},
                  {"valueType", DeltaTypeJson(*map.item_type())},
                  {"valueContainsNull", map.item_field()->nullable()}};
    }
    case arrow::Type::STRUCT: {
      json fields = json::array();
      for (const auto& child : type.fields()) fields.push_back(DeltaFieldJson(*child));
      return json{{"type", "struct"}, {"fields", std::move(fields)}};
    }
    default:
      return "unsupported:" + type.ToString();
  }
}

arrow::Result<std::shared_ptr<arrow::DataType>> TypeFromDeltaJson(const json& j, int depth) {
  if (depth > kMaxDepth) return InvalidArgument("Delta schema nested too deep");
  if (j.is_string()) {
    std::string name = j.get<std::string>();
    if (name == "integer") return arrow::int32();
    if (name == "long") return arrow::int64();
    if (name == "short") return arrow::int16();
    if (name == "byte") return arrow::int8();
    return ParseTypeText(name);
  }
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("Delta schema: bad type " + j.dump());
  }
  std::string kind = j["type"].get<std::string>();
  if (kind == "array") {
    ARROW_ASSIGN_OR_RAISE(auto element, TypeFromDeltaJson(j.at("elementType"), depth + 1));
    return ListOf(element, j.value("containsNull", true));
  }
  if (kind == "map") {
    ARROW_ASSIGN_OR_RAISE(auto key, TypeFromDeltaJson(j.at("keyType"), depth + 1));
    ARROW_ASSIGN_OR_RAISE(auto value, TypeFromDeltaJson(j.at("valueType"), depth + 1));
    return MapOf(key, value, j.value("valueContainsNull", true));
  }
  if (kind == "struct") {
    arrow::FieldVector fields;
    for (const auto& f : j.at("fields")) {
      ARROW_ASSIGN_OR_RAISE(auto type, TypeFromDeltaJson(f.at("type"), depth + 1));
      fields.push_back(arrow::field(f.at("name").get<std::string>(), type, f.value("nullable", true)));
    }
    return arrow::struct_(std::move(fields));
  }
  return InvalidArgument("Delta schema: unknown type " + j.dump());
}

}  // namespace

// --- public functions ----------------------------------------------------------------------------

arrow::Result<std::shared_ptr<arrow::DataType>> ParseTypeText(std::string_view text) {
  // The library's parser with the table-model rules; the emulator answers INVALID_ARGUMENT.
  TypeTextOptions options = TypeTextOptions::Defaults();
  options.strict_names = true;
  auto type = ParseDeltaTypeText(text, options);
  if (!type.ok()) return InvalidArgument("bad " + type.status().message());
  return type;
}

arrow::Result<std::shared_ptr<arrow::Schema>> NormalizeTableSchema(const arrow::Schema& schema) {
  if (schema.num_fields() == 0) return InvalidArgument("a table needs at least one column");
  if (schema.num_fields() > kMaxColumns) {
    return InvalidArgument("a table has at most 2000 columns, got " +
                           std::to_string(schema.num_fields()));
  }
  arrow::FieldVector fields;
  std::unordered_set<std::string> names;
  for (const auto& field : schema.fields()) {
    if (!IsValidName(field.get()->name())) {
      return InvalidArgument("column '" + field->name() +
                             "': names must match [A-Za-z_][A-Za-z0-9_]*");
    }
    if (!names.insert(Lower(field->name())).second) {
      return InvalidArgument("column '" + field->name() + "' appears twice");
    }
    ARROW_ASSIGN_OR_RAISE(auto type, NormalizeType(*field->type(), field->name(), 0));
    fields.push_back(arrow::field(field->name(), type, field->nullable()));
  }
  return arrow::schema(std::move(fields));
}

arrow::Status ValidateTableSchema(const arrow::Schema& schema) {
  ARROW_ASSIGN_OR_RAISE(auto normalized, NormalizeTableSchema(schema));
  if (!normalized->Equals(schema, /*check_metadata=*/false)) {
    return InvalidArgument("schema is not in the canonical table form: " + schema.ToString() +
                           " (expected " + normalized->ToString() + ")");
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDeclaration(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("table declaration is not valid JSON");
  const json* columns = &doc;
  if (doc.is_object()) {
    if (!doc.contains("columns")) return InvalidArgument("table declaration has no \"columns\"");
    columns = &doc["columns"];
  }
  if (!columns->is_array()) return InvalidArgument("table declaration: \"columns\" must be an array");
  arrow::FieldVector fields;
  int index = 0;
  for (const auto& column : *columns) {
    std::string where = "table declaration column " + std::to_string(index++);
    if (!column.is_object() || !column.contains("name") || !column["name"].is_string()) {
      return InvalidArgument(where + ": needs a string \"name\"");
    }
    std::string name = column["name"].get<std::string>();
    where += " ('" + name + "')";
    const char* type_key = column.contains("type") ? "type"
                           : column.contains("type_text") ? "type_text" : nullptr;
    if (type_key == nullptr || !column[type_key].is_string()) {
      return InvalidArgument(where + ": needs a string \"type\"");
    }
    auto type = ParseTypeText(column[type_key].get<std::string>());
    if (!type.ok()) return InvalidArgument(where + ": " + type.status().message());
    bool nullable = true;
    if (column.contains("nullable")) {
      if (!column["nullable"].is_boolean()) return InvalidArgument(where + ": \"nullable\" must be true/false");
      nullable = column["nullable"].get<bool>();
    }
    fields.push_back(arrow::field(name, *type, nullable));
  }
  return NormalizeTableSchema(arrow::Schema(std::move(fields)));
}

std::string TypeText(const arrow::DataType& type) {
  // Table types always render; anything else (not a table type) shows as Arrow prints it.
  auto text = DeltaTypeText(type.GetSharedPtr(), "");
  return text.ok() ? *text : type.ToString();
}

std::string TypeName(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::BOOL: return "BOOLEAN";
    case arrow::Type::INT8: return "BYTE";
    case arrow::Type::INT16: return "SHORT";
    case arrow::Type::INT32: return "INT";
    case arrow::Type::INT64: return "LONG";
    case arrow::Type::FLOAT: return "FLOAT";
    case arrow::Type::DOUBLE: return "DOUBLE";
    case arrow::Type::STRING: return "STRING";
    case arrow::Type::BINARY: return "BINARY";
    case arrow::Type::DATE32: return "DATE";
    case arrow::Type::TIMESTAMP:
      return checked_cast<const arrow::TimestampType&>(type).timezone().empty() ? "TIMESTAMP_NTZ"
                                                                                 : "TIMESTAMP";
    case arrow::Type::DECIMAL128: return "DECIMAL";
    case arrow::Type::LIST: return "ARRAY";
    case arrow::Type::MAP: return "MAP";
    case arrow::Type::STRUCT: return "STRUCT";
    default: return "NULL";
  }
}

std::string DeltaSchemaJson(const arrow::Schema& schema) {
  json fields = json::array();
  for (const auto& field : schema.fields()) fields.push_back(DeltaFieldJson(*field));
  return json{{"type", "struct"}, {"fields", std::move(fields)}}.dump();
}

arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDeltaJson(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("type", "") != "struct" ||
      !doc.contains("fields") || !doc["fields"].is_array()) {
    return InvalidArgument("Delta schemaString is not a JSON struct type");
  }
  try {
    ARROW_ASSIGN_OR_RAISE(auto type, TypeFromDeltaJson(doc, 0));
    return NormalizeTableSchema(arrow::Schema(type->fields()));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("Delta schemaString: ") + e.what());
  }
}

std::string UnityCatalogColumnsJson(const arrow::Schema& schema) {
  json columns = json::array();
  for (int i = 0; i < schema.num_fields(); ++i) {
    const auto& field = *schema.field(i);
    json column{{"name", field.name()},
                {"type_name", TypeName(*field.type())},
                {"type_text", TypeText(*field.type())},
                {"type_json", DeltaFieldJson(field).dump()},
                {"nullable", field.nullable()},
                {"position", i}};
    if (field.type()->id() == arrow::Type::DECIMAL128) {
      const auto& dec = checked_cast<const arrow::Decimal128Type&>(*field.type());
      column["type_precision"] = dec.precision();
      column["type_scale"] = dec.scale();
    } else {
      column["type_precision"] = 0;
      column["type_scale"] = 0;
    }
    columns.push_back(std::move(column));
  }
  return columns.dump();
}

// --- descriptor side ------------------------------------------------------------------------------

namespace internal {

bool IsIntegerProtoType(FieldDescriptorProto::Type type) {
  switch (type) {
    case FieldDescriptorProto::TYPE_INT64:
    case FieldDescriptorProto::TYPE_UINT64:
    case FieldDescriptorProto::TYPE_INT32:
    case FieldDescriptorProto::TYPE_FIXED64:
    case FieldDescriptorProto::TYPE_FIXED32:
    case FieldDescriptorProto::TYPE_UINT32:
    case FieldDescriptorProto::TYPE_SFIXED32:
    case FieldDescriptorProto::TYPE_SFIXED64:
    case FieldDescriptorProto::TYPE_SINT32:
    case FieldDescriptorProto::TYPE_SINT64:
      return true;
    default:
      return false;
  }
}

DescriptorIndex::DescriptorIndex(const DescriptorProto& root) : root_(&root) {
  Add(root, root.name());
}

void DescriptorIndex::Add(const DescriptorProto& message, const std::string& path) {
  if (messages_.size() > 100000) return;  // absurd descriptors: stop indexing, lookups fail
  messages_.emplace(path, &message);
  for (const auto& e : message.enum_type()) enums_.emplace(path + "." + e.name(), &e);
  for (const auto& nested : message.nested_type()) Add(nested, path + "." + nested.name());
}

template <typename Map>
typename Map::mapped_type DescriptorIndex::Find(const Map& map, std::string_view type_name,
                                                std::string_view scope,
                                                std::string* path_out) const {
  auto lookup = [&](const std::string& key) -> typename Map::mapped_type {
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    if (path_out) *path_out = key;
    return it->second;
  };
  if (type_name.empty()) return nullptr;
  if (type_name[0] != '.') {
    // Relative name: innermost enclosing scope first.
    std::string s(scope);
    while (true) {
      std::string key = s.empty() ? std::string(type_name) : s + "." + std::string(type_name);
      if (auto found = lookup(key)) return found;
      if (s.empty()) break;
      size_t dot = s.rfind('.');
      s = dot == std::string::npos ? "" : s.substr(0, dot);
    }
    return nullptr;
  }
  // Fully qualified: drop leading package components until a known path matches.
  std::string_view rest = type_name.substr(1);
  while (!rest.empty()) {
    if (auto found = lookup(std::string(rest))) return found;
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  return nullptr;
}

const DescriptorProto* DescriptorIndex::FindMessage(std::string_view type_name,
                                                    std::string_view scope,
                                                    std::string* path_out) const {
  return Find(messages_, type_name, scope, path_out);
}

const EnumDescriptorProto* DescriptorIndex::FindEnum(std::string_view type_name,
                                                     std::string_view scope) const {
  return Find(enums_, type_name, scope, nullptr);
}

namespace {

// A field's type after resolving type_name (descriptors may leave `type` unset).
struct ResolvedField {
  FieldDescriptorProto::Type type;
  const DescriptorProto* message = nullptr;  // TYPE_MESSAGE
  std::string message_path;
  const EnumDescriptorProto* enumeration = nullptr;  // TYPE_ENUM
};

std::string FieldLabel(const std::string& path, const FieldDescriptorProto& field) {
  return "field '" + path + "' (#" + std::to_string(field.number()) + ")";
}

arrow::Result<ResolvedField> Resolve(const DescriptorIndex& index, const FieldDescriptorProto& field,
                                     const std::string& scope, const std::string& path) {
  ResolvedField out;
  if (field.has_type()) {
    out.type = field.type();
  } else if (field.has_type_name()) {
    if (index.FindMessage(field.type_name(), scope)) {
      out.type = FieldDescriptorProto::TYPE_MESSAGE;
    } else if (index.FindEnum(field.type_name(), scope)) {
      out.type = FieldDescriptorProto::TYPE_ENUM;
    } else {
      return InvalidArgument(FieldLabel(path, field) + ": type '" + field.type_name() +
                             "' is not defined in the descriptor (nested types must be in "
                             "nested_type)");
    }
  } else {
    return InvalidArgument(FieldLabel(path, field) + " has no type");
  }
  if (out.type == FieldDescriptorProto::TYPE_GROUP) {
    return InvalidArgument(FieldLabel(path, field) + ": groups are not supported");
  }
  if (out.type == FieldDescriptorProto::TYPE_MESSAGE) {
    out.message = index.FindMessage(field.type_name(), scope, &out.message_path);
    if (out.message == nullptr) {
      return InvalidArgument(FieldLabel(path, field) + ": message type '" + field.type_name() +
                             "' is not defined in the descriptor (nested types must be in "
                             "nested_type)");
    }
  } else if (out.type == FieldDescriptorProto::TYPE_ENUM) {
    out.enumeration = index.FindEnum(field.type_name(), scope);
    if (out.enumeration == nullptr) {
      return InvalidArgument(FieldLabel(path, field) + ": enum type '" + field.type_name() +
                             "' is not defined in the descriptor");
    }
    if (out.enumeration->value_size() == 0) {
      return InvalidArgument(FieldLabel(path, field) + ": enum '" + field.type_name() +
                             "' has no values");
    }
  }
  return out;
}

arrow::Status CheckFieldNumbers(const DescriptorProto& message, const std::string& prefix) {
  std::unordered_set<int32_t> numbers;
  std::unordered_set<std::string> names;
  for (const auto& field : message.field()) {
    std::string path = prefix.empty() ? field.name() : prefix + "." + field.name();
    if (!IsValidName(field.name())) {
      return InvalidArgument("field '" + path + "': name must match [A-Za-z_][A-Za-z0-9_]*");
    }
    if (field.number() < 1 || field.number() > 536870911 ||
        (field.number() >= 19000 && field.number() <= 19999)) {
      return InvalidArgument(FieldLabel(path, field) +
                             ": field number must be 1..536870911 outside 19000-19999");
    }
    if (!numbers.insert(field.number()).second) {
      return InvalidArgument(FieldLabel(path, field) + ": field number used twice");
    }
    if (!names.insert(field.name()).second) {
      return InvalidArgument("field '" + path + "' appears twice in message '" + message.name() + "'");
    }
  }
  return arrow::Status::OK();
}

bool IsMapEntry(const DescriptorProto& message) {
  if (message.options().map_entry()) return true;
  // Descriptors built by hand may omit the option: accept the exact shape {key = 1; value = 2}.
  return message.field_size() == 2 && message.field(0).name() == "key" &&
         message.field(0).number() == 1 && message.field(1).name() == "value" &&
         message.field(1).number() == 2 && message.name().size() > 5 &&
         message.name().ends_with("Entry");
}

std::shared_ptr<EnumValues> MakeEnumValues(const EnumDescriptorProto& e) {
  auto values = std::make_shared<EnumValues>();
  for (const auto& v : e.value()) {
    values->name_by_number.emplace(v.number(), v.name());
    values->number_by_name.emplace(v.name(), v.number());
  }
  return values;
}

class Binder {
 public:
  explicit Binder(const DescriptorProto& root) : index_(root) {}

  arrow::Result<std::shared_ptr<BoundMessage>> BindMessage(const DescriptorProto& message,
                                                           const std::string& message_path,
                                                           const arrow::FieldVector& columns,
                                                           const std::string& prefix, int depth) {
    if (depth > kMaxDepth) {
      return InvalidArgument("descriptor nesting deeper than 100 at '" + prefix + "'");
    }
    for (const auto& open : stack_) {
      if (open == message_path) {
        return InvalidArgument("message '" + message_path + "' is recursive (at '" + prefix +
                               "'): recursive messages cannot map to a table");
      }
    }
    stack_.push_back(message_path);
    ARROW_RETURN_NOT_OK(CheckFieldNumbers(message, prefix));
    auto bound = std::make_shared<BoundMessage>();
    bound->name = message_path;
    std::unordered_map<std::string, int> column_by_name;
    for (int i = 0; i < static_cast<int>(columns.size()); ++i) column_by_name[columns[i]->name()] = i;
    std::vector<bool> used(columns.size(), false);
    for (const auto& field : message.field()) {
      std::string path = prefix.empty() ? field.name() : prefix + "." + field.name();
      auto it = column_by_name.find(field.name());
      if (it == column_by_name.end()) {
        std::string names;
        for (size_t i = 0; i < columns.size() && i < 20; ++i) {
          names += (i ? ", " : "") + columns[i]->name();
        }
        if (columns.size() > 20) names += ", ...";
        return InvalidArgument("descriptor " + FieldLabel(path, field) +
                               " has no column of that name in the table (" +
                               (prefix.empty() ? "columns" : "fields of '" + prefix + "'") +
                               ": " + names + ")");
      }
      used[it->second] = true;
      ARROW_ASSIGN_OR_RAISE(BoundField bf,
                            BindField(field, message_path, columns[it->second], path, depth));
      bf.column_index = it->second;
      bound->fields.push_back(std::move(bf));
    }
    for (size_t i = 0; i < columns.size(); ++i) {
      if (used[i]) continue;
      std::string path = prefix.empty() ? columns[i]->name() : prefix + "." + columns[i]->name();
      if (!columns[i]->nullable()) {
        return InvalidArgument("table column '" + path + "' is NOT NULL but the descriptor has no field '" +
                               columns[i]->name() + "'");
      }
      bound->unbound_columns.push_back(static_cast<int>(i));
    }
    stack_.pop_back();
    return bound;
  }

 private:
  arrow::Result<BoundField> BindField(const FieldDescriptorProto& field, const std::string& scope,
                                      const std::shared_ptr<arrow::Field>& column,
                                      const std::string& path, int depth) {
    ARROW_ASSIGN_OR_RAISE(ResolvedField resolved, Resolve(index_, field, scope, path));
    BoundField bf;
    bf.path = path;
    bf.number = field.number();
    bf.type = resolved.type;
    bf.column = column;
    bf.repeated = field.label() == FieldDescriptorProto::LABEL_REPEATED;
    bf.required = field.label() == FieldDescriptorProto::LABEL_REQUIRED;
    const arrow::DataType& col_type = *column->type();
    std::string col_desc = "table column '" + path + "' (" + TypeText(col_type) +
                           (column->nullable() ? "" : " NOT NULL") + ")";
    bool col_is_list = col_type.id() == arrow::Type::LIST;
    bool col_is_map = col_type.id() == arrow::Type::MAP;
    if (bf.repeated != (col_is_list || col_is_map)) {
      return InvalidArgument("descriptor " + FieldLabel(path, field) + " is " +
                             (bf.repeated ? "repeated" : "not repeated") + " but " + col_desc +
                             (bf.repeated ? " is not an array or map" : " is an array or map"));
    }
    if (!bf.repeated) {
      if (bf.required && column->nullable()) {
        return InvalidArgument("descriptor " + FieldLabel(path, field) + " is required but " +
                               col_desc + " is nullable: the field must be optional");
      }
      if (!bf.required && !column->nullable()) {
        return InvalidArgument("descriptor " + FieldLabel(path, field) + " is optional but " +
                               col_desc + " is NOT NULL: the field must be required");
      }
    }
    if (col_is_map) {
      if (resolved.type != FieldDescriptorProto::TYPE_MESSAGE || !IsMapEntry(*resolved.message)) {
        return InvalidArgument("descriptor " + FieldLabel(path, field) + " (" +
                               std::string(ProtoTypeName(resolved.type)) + ") is not a map entry but " +
                               col_desc + " is a map");
      }
      ARROW_ASSIGN_OR_RAISE(bf.message, BindMapEntry(*resolved.message, resolved.message_path,
                                                     checked_cast<const arrow::MapType&>(col_type),
                                                     path, depth));
      bf.is_map = true;
      return bf;
    }
    const arrow::DataType& target =
        col_is_list ? *checked_cast<const arrow::ListType&>(col_type).value_type() : col_type;
    // A map-entry message bound to array<struct<key, value>> is fine: the wire form is the same.
    ARROW_RETURN_NOT_OK(CheckScalarOrStruct(field, resolved, target, path, col_desc, depth, &bf));
    return bf;
  }

  arrow::Status CheckScalarOrStruct(const FieldDescriptorProto& field, const ResolvedField& resolved,
                                    const arrow::DataType& target, const std::string& path,
                                    const std::string& col_desc, int depth, BoundField* bf) {
    using FDP = FieldDescriptorProto;
    auto t = resolved.type;
    bool ok = false;
    switch (target.id()) {
      case arrow::Type::BOOL: ok = t == FDP::TYPE_BOOL; break;
      case arrow::Type::INT8:
      case arrow::Type::INT16:
      case arrow::Type::INT32:
      case arrow::Type::INT64:
      case arrow::Type::DATE32:
      case arrow::Type::TIMESTAMP: ok = IsIntegerProtoType(t) || t == FDP::TYPE_ENUM; break;
      case arrow::Type::FLOAT: ok = t == FDP::TYPE_FLOAT; break;
      case arrow::Type::DOUBLE: ok = t == FDP::TYPE_FLOAT || t == FDP::TYPE_DOUBLE; break;
      case arrow::Type::STRING: ok = t == FDP::TYPE_STRING || t == FDP::TYPE_ENUM; break;
      case arrow::Type::BINARY: ok = t == FDP::TYPE_BYTES || t == FDP::TYPE_STRING; break;
      case arrow::Type::DECIMAL128: ok = t == FDP::TYPE_STRING; break;
      case arrow::Type::STRUCT: {
        if (t != FDP::TYPE_MESSAGE) break;
        ARROW_ASSIGN_OR_RAISE(bf->message, BindMessage(*resolved.message, resolved.message_path,
                                                       target.fields(), path, depth + 1));
        return arrow::Status::OK();
      }
      default: break;
    }
    if (target.id() == arrow::Type::DATE32 || target.id() == arrow::Type::TIMESTAMP) {
      ok = ok && t != FDP::TYPE_ENUM;
    }
    if (!ok) {
      std::string proto_type(ProtoTypeName(t));
      if (t == FDP::TYPE_MESSAGE || t == FDP::TYPE_ENUM) proto_type += " " + field.type_name();
      return InvalidArgument("descriptor " + FieldLabel(path, field) + " has type " + proto_type +
                             ", which cannot be stored in " + col_desc);
    }
    if (t == FDP::TYPE_ENUM) bf->enum_values = MakeEnumValues(*resolved.enumeration);
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<BoundMessage>> BindMapEntry(const DescriptorProto& entry,
                                                            const std::string& entry_path,
                                                            const arrow::MapType& map,
                                                            const std::string& path, int depth) {
    if (depth > kMaxDepth) return InvalidArgument("descriptor nesting deeper than 100 at '" + path + "'");
    const FieldDescriptorProto* key = nullptr;
    const FieldDescriptorProto* value = nullptr;
    for (const auto& f : entry.field()) {
      if (f.number() == 1 && f.name() == "key") key = &f;
      else if (f.number() == 2 && f.name() == "value") value = &f;
      else
        return InvalidArgument("descriptor field '" + path + "': map entry '" + entry.name() +
                               "' may only have key = 1 and value = 2, found '" + f.name() + "' = " +
                               std::to_string(f.number()));
    }
    if (key == nullptr || value == nullptr) {
      return InvalidArgument("descriptor field '" + path + "': map entry '" + entry.name() +
                             "' needs key = 1 and value = 2");
    }
    auto bound = std::make_shared<BoundMessage>();
    bound->name = entry_path;
    for (int i = 0; i < 2; ++i) {
      const FieldDescriptorProto& f = i == 0 ? *key : *value;
      const auto& column = i == 0 ? map.key_field() : map.item_field();
      std::string fpath = path + "." + f.name();
      ARROW_ASSIGN_OR_RAISE(ResolvedField resolved, Resolve(index_, f, entry_path, fpath));
      if (f.label() == FieldDescriptorProto::LABEL_REPEATED) {
        return InvalidArgument("descriptor " + FieldLabel(fpath, f) + ": map " + f.name() +
                               " cannot be repeated");
      }
      BoundField bf;
      bf.path = fpath;
      bf.number = f.number();
      bf.type = resolved.type;
      bf.column = column;
      bf.column_index = i;
      bf.required = f.label() == FieldDescriptorProto::LABEL_REQUIRED;
      std::string col_desc = "table column '" + fpath + "' (" + TypeText(*column->type()) +
                             (column->nullable() ? "" : " NOT NULL") + ")";
      // Map entry fields are optional in every proto syntax (protoc's map<K, V> makes them so),
      // so their labels are not matched against nullability: an absent key or non-nullable
      // value decodes as its default, an absent nullable value as NULL.
      ARROW_RETURN_NOT_OK(
          CheckScalarOrStruct(f, resolved, *column->type(), fpath, col_desc, depth, &bf));
      bound->fields.push_back(std::move(bf));
    }
    return bound;
  }

  DescriptorIndex index_;
  std::vector<std::string> stack_;
};

// Descriptor -> Arrow type of one field (SchemaFromDescriptor).
class SchemaDeriver {
 public:
  explicit SchemaDeriver(const DescriptorProto& root) : index_(root) {}

  arrow::Result<arrow::FieldVector> Fields(const DescriptorProto& message, const std::string& scope,
                                           const std::string& prefix, int depth) {
    if (depth > kMaxDepth) return InvalidArgument("descriptor nesting deeper than 100 at '" + prefix + "'");
    for (const auto& open : stack_) {
      if (open == scope) {
        return InvalidArgument("message '" + scope + "' is recursive (at '" + prefix +
                               "'): recursive messages cannot map to a table");
      }
    }
    stack_.push_back(scope);
    ARROW_RETURN_NOT_OK(CheckFieldNumbers(message, prefix));
    arrow::FieldVector fields;
    for (const auto& field : message.field()) {
      std::string path = prefix.empty() ? field.name() : prefix + "." + field.name();
      ARROW_ASSIGN_OR_RAISE(ResolvedField resolved, Resolve(index_, field, scope, path));
      bool repeated = field.label() == FieldDescriptorProto::LABEL_REPEATED;
      std::shared_ptr<arrow::DataType> type;
      if (repeated && resolved.type == FieldDescriptorProto::TYPE_MESSAGE &&
          resolved.message->options().map_entry()) {
        const DescriptorProto& entry = *resolved.message;
        bool shape = entry.field_size() == 2;
        for (const auto& f : entry.field()) {
          shape = shape && ((f.name() == "key" && f.number() == 1) || (f.name() == "value" && f.number() == 2)) &&
                  f.label() != FieldDescriptorProto::LABEL_REPEATED;
        }
        if (!shape) {
          return InvalidArgument("descriptor field '" + path + "': map entry '" + entry.name() +
                                 "' needs exactly key = 1 and value = 2, neither repeated");
        }
        ARROW_ASSIGN_OR_RAISE(auto kv, Fields(entry, resolved.message_path, path, depth + 1));
        if (kv[0]->name() != "key") std::swap(kv[0], kv[1]);
        auto key_type = kv[0]->type()->id();
        if (key_type == arrow::Type::LIST || key_type == arrow::Type::STRUCT ||
            key_type == arrow::Type::MAP) {
          return InvalidArgument("descriptor field '" + path + "': map keys must be scalar");
        }
        type = MapOf(kv[0]->type(), kv[1]->type(), kv[1]->nullable());
        fields.push_back(arrow::field(field.name(), type, true));
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(type, ScalarOrStruct(resolved, path, depth));
      if (repeated) {
        fields.push_back(arrow::field(field.name(), ListOf(type, false), true));
      } else {
        fields.push_back(arrow::field(field.name(), type,
                                      field.label() != FieldDescriptorProto::LABEL_REQUIRED));
      }
    }
    stack_.pop_back();
    return fields;
  }

 private:
  arrow::Result<std::shared_ptr<arrow::DataType>> ScalarOrStruct(const ResolvedField& resolved,
                                                                 const std::string& path, int depth) {
    using FDP = FieldDescriptorProto;
    switch (resolved.type) {
      case FDP::TYPE_INT32:
      case FDP::TYPE_SINT32:
      case FDP::TYPE_SFIXED32: return arrow::int32();
      case FDP::TYPE_INT64:
      case FDP::TYPE_SINT64:
      case FDP::TYPE_SFIXED64:
      case FDP::TYPE_UINT32:
      case FDP::TYPE_FIXED32:
      case FDP::TYPE_UINT64:
      case FDP::TYPE_FIXED64: return arrow::int64();
      case FDP::TYPE_FLOAT: return arrow::float32();
      case FDP::TYPE_DOUBLE: return arrow::float64();
      case FDP::TYPE_BOOL: return arrow::boolean();
      case FDP::TYPE_STRING:
      case FDP::TYPE_ENUM: return arrow::utf8();
      case FDP::TYPE_BYTES: return arrow::binary();
      case FDP::TYPE_MESSAGE: {
        ARROW_ASSIGN_OR_RAISE(auto fields,
                              Fields(*resolved.message, resolved.message_path, path, depth + 1));
        if (fields.empty()) {
          return InvalidArgument("descriptor field '" + path + "': message '" +
                                 resolved.message_path + "' has no fields (empty structs cannot be stored)");
        }
        return arrow::struct_(std::move(fields));
      }
      default:
        return InvalidArgument("descriptor field '" + path + "': type " +
                               std::string(ProtoTypeName(resolved.type)) + " is not supported");
    }
  }

  DescriptorIndex index_;
  std::vector<std::string> stack_;
};

}  // namespace

arrow::Result<std::shared_ptr<BoundMessage>> BindDescriptor(const DescriptorProto& descriptor,
                                                            const arrow::Schema& schema) {
  if (descriptor.name().empty()) return InvalidArgument("descriptor has no message name");
  if (descriptor.field_size() == 0) return InvalidArgument("descriptor has no fields");
  Binder binder(descriptor);
  return binder.BindMessage(descriptor, descriptor.name(), schema.fields(), "", 0);
}

}  // namespace internal

arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDescriptor(const DescriptorProto& descriptor) {
  if (descriptor.name().empty()) return InvalidArgument("descriptor has no message name");
  if (descriptor.field_size() == 0) return InvalidArgument("descriptor has no fields");
  if (descriptor.field_size() > kMaxColumns) {
    return InvalidArgument("descriptor has " + std::to_string(descriptor.field_size()) +
                           " fields; a table has at most 2000 columns");
  }
  internal::SchemaDeriver deriver(descriptor);
  ARROW_ASSIGN_OR_RAISE(auto fields, deriver.Fields(descriptor, descriptor.name(), "", 0));
  return NormalizeTableSchema(arrow::Schema(std::move(fields)));
}

arrow::Status CheckDescriptorAgainstSchema(const DescriptorProto& descriptor,
                                           const arrow::Schema& schema) {
  return internal::BindDescriptor(descriptor, schema).status();
}

}  // namespace arrow_zerobus::emulator
