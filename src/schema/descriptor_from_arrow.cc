// Arrow schema -> DescriptorProto, following docs/type-mapping.md.
#include <set>
#include <string>

#include <arrow/type.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "schema/type_support_internal.h"

namespace arrow_zerobus {

namespace {

using internal::IsListLike;
using internal::ValueType;

std::string CamelCase(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  return out.empty() ? "Field" : out;
}

arrow::Status Refuse(const std::string& path, const arrow::DataType& type, const char* why) {
  return ConversionError("column '" + path + "' has unsupported type " + type.ToString() + ": " +
                         why);
}

// Builds the nested types of one message scope, keeping the names in it unique.
class Scope {
 public:
  Scope(DescriptorProto* message, std::string full_name)
      : message_(message), full_name_(std::move(full_name)) {}

  // Field names are reserved first so that no nested type shadows a field.
  void ReserveName(const std::string& name) { names_.insert(name); }

  DescriptorProto* AddNestedType(const std::string& wanted, std::string* type_name) {
    std::string name = wanted;
    for (int i = 2; names_.count(name); ++i) name = wanted + std::to_string(i);
    names_.insert(name);
    DescriptorProto* nested = message_->add_nested_type();
    nested->set_name(name);
    *type_name = full_name_ + "." + name;
    return nested;
  }

  DescriptorProto* message() { return message_; }
  const std::string& full_name() const { return full_name_; }

 private:
  DescriptorProto* message_;
  std::string full_name_;  // with the leading '.', e.g. ".ArrowRecord.Readings"
  std::set<std::string> names_;
};

class DescriptorGenerator {
 public:
  // Adds one proto field per Arrow field to scope's message.
  arrow::Status AddFields(const arrow::FieldVector& fields, Scope* scope,
                          const std::string& path_prefix, int depth) {
    if (depth > kMaxNestingDepth) {
      return internal::TooDeepError(path_prefix);
    }
    for (const auto& f : fields) {
      const std::string path = path_prefix.empty() ? f->name() : path_prefix + "." + f->name();
      if (!internal::IsValidFieldName(f->name())) {
        return ConversionError("column '" + path + "': name '" + f->name() +
                               "' is not a valid field name (letters, digits, underscore; not "
                               "starting with a digit)");
      }
      scope->ReserveName(f->name());
    }
    for (size_t i = 0; i < fields.size(); ++i) {
      const auto& f = fields[i];
      const std::string path = path_prefix.empty() ? f->name() : path_prefix + "." + f->name();
      FieldDescriptorProto* field = scope->message()->add_field();
      field->set_name(f->name());
      field->set_number(internal::FieldNumberForIndex(static_cast<int>(i)));
      field->set_label(f->nullable() ? FieldDescriptorProto::LABEL_OPTIONAL
                                     : FieldDescriptorProto::LABEL_REQUIRED);
      ARROW_RETURN_NOT_OK(SetType(f, path, field, scope, depth));
    }
    return arrow::Status::OK();
  }

 private:
  arrow::Status SetType(const std::shared_ptr<arrow::Field>& f, const std::string& path,
                        FieldDescriptorProto* field, Scope* scope, int depth) {
    const auto type = ValueType(f->type());
    if (IsListLike(type->id())) {
      const auto element = ValueType(internal::ListValueField(*type)->type());
      if (IsListLike(element->id())) {
        return Refuse(path, *f->type(), "lists of lists have no Zerobus column type");
      }
      if (element->id() == arrow::Type::MAP) {
        return Refuse(path, *f->type(), "lists of maps have no Zerobus column type");
      }
      field->set_label(FieldDescriptorProto::LABEL_REPEATED);
      ARROW_RETURN_NOT_OK(
          SetValueType(element, f->type(), f->name(), path, field, scope, depth + 1));
      if (field->type() != FieldDescriptorProto::TYPE_MESSAGE &&
          field->type() != FieldDescriptorProto::TYPE_STRING &&
          field->type() != FieldDescriptorProto::TYPE_BYTES) {
        field->mutable_options()->set_packed(true);  // fewer bytes; parsers take both forms
      }
      return arrow::Status::OK();
    }
    if (type->id() == arrow::Type::MAP) {
      return SetMapType(static_cast<const arrow::MapType&>(*type), f->name(), path, field, scope,
                        depth + 1);
    }
    return SetValueType(type, f->type(), f->name(), path, field, scope, depth);
  }

  // A non-list value: scalar or struct.
  arrow::Status SetValueType(const std::shared_ptr<arrow::DataType>& type,
                             const std::shared_ptr<arrow::DataType>& declared,
                             const std::string& name, const std::string& path,
                             FieldDescriptorProto* field, Scope* scope, int depth) {
    if (type->id() == arrow::Type::STRUCT) {
      if (type->num_fields() == 0) {
        return Refuse(path, *declared, "a struct needs at least one field");
      }
      std::string type_name;
      DescriptorProto* nested = scope->AddNestedType(CamelCase(name), &type_name);
      field->set_type(FieldDescriptorProto::TYPE_MESSAGE);
      field->set_type_name(type_name);
      Scope inner(nested, type_name);
      return AddFields(type->fields(), &inner, path, depth + 1);
    }
    if (type->id() == arrow::Type::MAP) {
      return Refuse(path, *declared, "maps are supported as columns and struct fields only");
    }
    FieldDescriptorProto::Type scalar;
    ARROW_RETURN_NOT_OK(ScalarType(*type, *declared, path, &scalar));
    field->set_type(scalar);
    return arrow::Status::OK();
  }

  // map<K, V>: a repeated entry message {K key = 1; V value = 2;} with map_entry set. Entry
  // messages may not hold nested types, so a struct value's message is the entry's sibling.
  arrow::Status SetMapType(const arrow::MapType& map, const std::string& name,
                           const std::string& path, FieldDescriptorProto* field, Scope* scope,
                           int depth) {
    if (depth > kMaxNestingDepth) {
      return internal::TooDeepError(path);
    }
    const auto key_type = ValueType(map.key_type());
    if (!internal::IsIntegerType(key_type->id()) && key_type->id() != arrow::Type::BOOL &&
        !internal::IsStringLike(key_type->id())) {
      return Refuse(path, map, "map keys must be integers, booleans or strings");
    }
    const auto value_type = ValueType(map.item_type());
    if (IsListLike(value_type->id()) || value_type->id() == arrow::Type::MAP) {
      return Refuse(path, map, "map values cannot be lists or maps");
    }
    std::string entry_name;
    DescriptorProto* entry = scope->AddNestedType(CamelCase(name) + "Entry", &entry_name);
    entry->mutable_options()->set_map_entry(true);
    field->set_label(FieldDescriptorProto::LABEL_REPEATED);
    field->set_type(FieldDescriptorProto::TYPE_MESSAGE);
    field->set_type_name(entry_name);

    FieldDescriptorProto* key = entry->add_field();
    key->set_name("key");
    key->set_number(1);
    key->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
    FieldDescriptorProto::Type key_scalar;
    ARROW_RETURN_NOT_OK(ScalarType(*key_type, *map.key_type(), path + ".key", &key_scalar));
    key->set_type(key_scalar);

    FieldDescriptorProto* value = entry->add_field();
    value->set_name("value");
    value->set_number(2);
    value->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
    // The value's struct message (if any) lives in the entry's parent scope.
    return SetValueType(value_type, map.item_type(), name + "_value", path + ".value", value,
                        scope, depth);
  }

  static arrow::Status ScalarType(const arrow::DataType& type, const arrow::DataType& declared,
                                  const std::string& path, FieldDescriptorProto::Type* out) {
    using T = arrow::Type;
    switch (type.id()) {
      case T::BOOL:
        *out = FieldDescriptorProto::TYPE_BOOL;
        return arrow::Status::OK();
      case T::INT8:
      case T::INT16:
      case T::INT32:
      case T::UINT8:
      case T::UINT16:
      case T::DATE32:
      case T::DATE64:
        *out = FieldDescriptorProto::TYPE_INT32;
        return arrow::Status::OK();
      case T::UINT32:
      case T::INT64:
      case T::UINT64:
      case T::TIMESTAMP:
        *out = FieldDescriptorProto::TYPE_INT64;
        return arrow::Status::OK();
      case T::HALF_FLOAT:
      case T::FLOAT:
        *out = FieldDescriptorProto::TYPE_FLOAT;
        return arrow::Status::OK();
      case T::DOUBLE:
        *out = FieldDescriptorProto::TYPE_DOUBLE;
        return arrow::Status::OK();
      case T::STRING:
      case T::LARGE_STRING:
      case T::STRING_VIEW:
      case T::DECIMAL32:
      case T::DECIMAL64:
      case T::DECIMAL128:
      case T::DECIMAL256:
        *out = FieldDescriptorProto::TYPE_STRING;
        return arrow::Status::OK();
      case T::BINARY:
      case T::LARGE_BINARY:
      case T::BINARY_VIEW:
      case T::FIXED_SIZE_BINARY:
        *out = FieldDescriptorProto::TYPE_BYTES;
        return arrow::Status::OK();
      case T::NA:
        return Refuse(path, declared, "a null-typed column has no Zerobus column type");
      case T::TIME32:
      case T::TIME64:
        return Refuse(path, declared, "Zerobus has no TIME column type");
      case T::DURATION:
      case T::INTERVAL_MONTHS:
      case T::INTERVAL_DAY_TIME:
      case T::INTERVAL_MONTH_DAY_NANO:
        return Refuse(path, declared, "durations and intervals have no Zerobus column type");
      case T::SPARSE_UNION:
      case T::DENSE_UNION:
        return Refuse(path, declared, "unions have no Zerobus column type");
      default:
        return Refuse(path, declared, "no mapping to a protobuf field type");
    }
  }
};

}  // namespace

arrow::Result<DescriptorProto> DescriptorFromArrowSchema(const arrow::Schema& schema,
                                                         const DescriptorOptions& options) {
  if (schema.num_fields() == 0) {
    return ConversionError("the schema has no columns: Zerobus needs at least one");
  }
  if (schema.num_fields() > kMaxColumns) {
    return ConversionError("the schema has " + std::to_string(schema.num_fields()) +
                           " columns; Zerobus takes at most " + std::to_string(kMaxColumns));
  }
  if (!internal::IsValidFieldName(options.message_name)) {
    return ConfigurationError("message name '" + options.message_name +
                              "' is not a valid protobuf identifier");
  }
  DescriptorProto root;
  root.set_name(options.message_name);
  Scope scope(&root, "." + options.message_name);
  DescriptorGenerator generator;
  ARROW_RETURN_NOT_OK(generator.AddFields(schema.fields(), &scope, "", 1));
  return root;
}

}  // namespace arrow_zerobus
