// Binds an Arrow schema to a protobuf descriptor (generated or supplied by the caller).
#include <algorithm>
#include <string>

#include <arrow/type.h>
#include <google/protobuf/descriptor.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "schema/type_support_internal.h"

namespace arrow_zerobus {

namespace {

namespace pb = google::protobuf;
using internal::IsListLike;
using internal::ValueType;

// Collects the pool's build errors so the caller sees why a descriptor is invalid.
class CollectErrors : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message*, ErrorLocation, const std::string& message) override {
    if (!text.empty()) text += "; ";
    text += element_name + ": " + message;
  }
  std::string text;
};

const char* ProtoTypeName(const pb::FieldDescriptor& field) {
  return field.is_map() ? "map" : field.type_name();
}

std::string FieldLabel(const pb::FieldDescriptor& field) {
  return "field '" + field.full_name() + "' (" + ProtoTypeName(field) + ")";
}

arrow::Status Incompatible(const std::string& path, const arrow::DataType& type,
                           const pb::FieldDescriptor& field, const std::string& why = "") {
  std::string msg = "column '" + path + "' (" + type.ToString() + ") cannot be written to " +
                    FieldLabel(field);
  if (!why.empty()) msg += ": " + why;
  return ConversionError(std::move(msg));
}

class Binder {
 public:
  arrow::Result<std::shared_ptr<const MessageBinding>> BindMessage(
      const arrow::FieldVector& columns, const pb::Descriptor& message, const std::string& prefix,
      int depth) {
    if (depth > kMaxNestingDepth) {
      return internal::TooDeepError(prefix);
    }
    auto binding = std::make_shared<MessageBinding>();
    binding->full_name = message.full_name();
    for (size_t i = 0; i < columns.size(); ++i) {
      const auto& column = columns[i];
      const std::string path = prefix.empty() ? column->name() : prefix + "." + column->name();
      const pb::FieldDescriptor* field = message.FindFieldByName(column->name());
      if (field == nullptr) {
        return ConversionError("column '" + path + "' has no field in message '" +
                               message.full_name() + "'");
      }
      ARROW_ASSIGN_OR_RAISE(FieldBinding fb,
                            BindField(column, static_cast<int>(i), *field, path, depth));
      binding->fields.push_back(std::move(fb));
    }
    for (int i = 0; i < message.field_count(); ++i) {
      const pb::FieldDescriptor* field = message.field(i);
      if (!field->is_required()) continue;
      const bool bound = std::any_of(columns.begin(), columns.end(),
                                     [&](const auto& c) { return c->name() == field->name(); });
      if (!bound) {
        return ConversionError("required field '" + field->full_name() +
                               "' has no column" +
                               (prefix.empty() ? std::string() : " in '" + prefix + "'"));
      }
    }
    // Writing fields in number order gives canonical bytes; the encoder follows this order.
    std::stable_sort(binding->fields.begin(), binding->fields.end(),
                     [](const FieldBinding& a, const FieldBinding& b) { return a.number < b.number; });
    return std::shared_ptr<const MessageBinding>(std::move(binding));
  }

 private:
  // What every binding of `column` to `field` records, whatever its shape.
  static FieldBinding BaseBinding(const std::shared_ptr<arrow::Field>& column, int index,
                                  const pb::FieldDescriptor& field, const std::string& path) {
    FieldBinding fb;
    fb.column_path = path;
    fb.arrow_index = index;
    fb.arrow_field = column;
    fb.field_name = field.name();
    fb.number = field.number();
    fb.type = static_cast<FieldDescriptorProto::Type>(field.type());
    fb.required = field.is_required();
    return fb;
  }

  arrow::Result<FieldBinding> BindField(const std::shared_ptr<arrow::Field>& column, int index,
                                        const pb::FieldDescriptor& field, const std::string& path,
                                        int depth) {
    FieldBinding fb = BaseBinding(column, index, field, path);
    fb.repeated = field.is_repeated();
    fb.packed = field.is_packed();
    fb.is_map = field.is_map();

    const auto type = ValueType(column->type());
    if (field.is_map()) {
      if (type->id() != arrow::Type::MAP) {
        return Incompatible(path, *column->type(), field, "a map field takes an Arrow map column");
      }
      const auto& map = static_cast<const arrow::MapType&>(*type);
      const pb::Descriptor& entry = *field.message_type();
      auto entry_binding = std::make_shared<MessageBinding>();
      entry_binding->full_name = entry.full_name();
      ARROW_ASSIGN_OR_RAISE(FieldBinding key, BindValue(map.key_field(), 0, *entry.map_key(),
                                                        path + ".key", depth + 1));
      ARROW_ASSIGN_OR_RAISE(FieldBinding value, BindValue(map.item_field(), 1,
                                                          *entry.map_value(), path + ".value",
                                                          depth + 1));
      entry_binding->fields.push_back(std::move(key));
      entry_binding->fields.push_back(std::move(value));
      fb.message = std::move(entry_binding);
      return fb;
    }
    if (field.is_repeated()) {
      if (!IsListLike(type->id())) {
        return Incompatible(path, *column->type(), field,
                            "a repeated field takes an Arrow list column");
      }
      const auto& element = internal::ListValueField(*type);
      if (IsListLike(ValueType(element->type())->id()) ||
          ValueType(element->type())->id() == arrow::Type::MAP) {
        return Incompatible(path, *column->type(), field,
                            "list elements cannot be lists or maps");
      }
      ARROW_ASSIGN_OR_RAISE(FieldBinding elem, BindValue(element, 0, field, path, depth + 1));
      fb.message = std::move(elem.message);
      fb.enum_values = std::move(elem.enum_values);
      return fb;
    }
    if (IsListLike(type->id()) || type->id() == arrow::Type::MAP) {
      return Incompatible(path, *column->type(), field,
                          "a list or map column needs a repeated or map field");
    }
    ARROW_ASSIGN_OR_RAISE(FieldBinding value, BindValue(column, index, field, path, depth));
    fb.message = std::move(value.message);
    fb.enum_values = std::move(value.enum_values);
    return fb;
  }

  // Checks that one (non-list) Arrow value can be written into `field`'s type.
  arrow::Result<FieldBinding> BindValue(const std::shared_ptr<arrow::Field>& column, int index,
                                        const pb::FieldDescriptor& field, const std::string& path,
                                        int depth) {
    FieldBinding fb = BaseBinding(column, index, field, path);
    const auto type = ValueType(column->type());
    const auto id = type->id();
    const bool integer = internal::IsIntegerType(id);
    const bool temporal = id == arrow::Type::DATE32 || id == arrow::Type::DATE64 ||
                          id == arrow::Type::TIMESTAMP;
    bool ok = false;
    switch (field.type()) {
      case pb::FieldDescriptor::TYPE_BOOL:
        ok = id == arrow::Type::BOOL;
        break;
      case pb::FieldDescriptor::TYPE_INT32:
      case pb::FieldDescriptor::TYPE_SINT32:
      case pb::FieldDescriptor::TYPE_SFIXED32:
      case pb::FieldDescriptor::TYPE_UINT32:
      case pb::FieldDescriptor::TYPE_FIXED32:
      case pb::FieldDescriptor::TYPE_INT64:
      case pb::FieldDescriptor::TYPE_SINT64:
      case pb::FieldDescriptor::TYPE_SFIXED64:
      case pb::FieldDescriptor::TYPE_UINT64:
      case pb::FieldDescriptor::TYPE_FIXED64:
        // Narrowing and sign are checked per value by the encoder.
        ok = integer || temporal;
        break;
      case pb::FieldDescriptor::TYPE_FLOAT:
      case pb::FieldDescriptor::TYPE_DOUBLE:
        ok = internal::IsFloatingType(id);
        break;
      case pb::FieldDescriptor::TYPE_STRING:
        ok = internal::IsStringLike(id) || internal::IsDecimalType(id);
        break;
      case pb::FieldDescriptor::TYPE_BYTES:
        ok = internal::IsBinaryLike(id) || internal::IsStringLike(id);
        break;
      case pb::FieldDescriptor::TYPE_ENUM: {
        ok = internal::IsStringLike(id) || integer;
        if (ok) {
          auto values = std::make_shared<EnumBinding>();
          const pb::EnumDescriptor& e = *field.enum_type();
          for (int i = 0; i < e.value_count(); ++i) {
            values->number_by_name.emplace(e.value(i)->name(), e.value(i)->number());
            values->numbers.push_back(e.value(i)->number());
          }
          std::sort(values->numbers.begin(), values->numbers.end());
          values->numbers.erase(std::unique(values->numbers.begin(), values->numbers.end()),
                                values->numbers.end());
          fb.enum_values = std::move(values);
        }
        break;
      }
      case pb::FieldDescriptor::TYPE_MESSAGE: {
        if (id != arrow::Type::STRUCT) {
          return Incompatible(path, *column->type(), field, "a message field takes a struct");
        }
        ARROW_ASSIGN_OR_RAISE(fb.message,
                              BindMessage(type->fields(), *field.message_type(), path, depth + 1));
        return fb;
      }
      case pb::FieldDescriptor::TYPE_GROUP:
        return Incompatible(path, *column->type(), field, "groups are not supported");
    }
    if (!ok) return Incompatible(path, *column->type(), field);
    return fb;
  }
};

}  // namespace

arrow::Result<std::shared_ptr<const MessageBinding>> BindArrowSchema(
    const arrow::Schema& schema, const DescriptorProto& descriptor) {
  if (schema.num_fields() == 0) {
    return ConversionError("the schema has no columns: Zerobus needs at least one");
  }
  // A pool validates the descriptor (numbers, names, type references) and resolves type names.
  pb::FileDescriptorProto file;
  file.set_name("arrow_zerobus_bound.proto");
  file.set_syntax("proto2");
  *file.add_message_type() = descriptor;
  pb::DescriptorPool pool;
  CollectErrors errors;
  const pb::FileDescriptor* built = pool.BuildFileCollectingErrors(file, &errors);
  if (built == nullptr) {
    return ConversionError("invalid descriptor for message '" + descriptor.name() +
                           "': " + errors.text);
  }
  Binder binder;
  return binder.BindMessage(schema.fields(), *built->message_type(0), "", 1);
}

}  // namespace arrow_zerobus
