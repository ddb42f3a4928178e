// DescriptorProto -> readable proto2 text.
#include <string>

#include "arrow_zerobus/schema.h"

namespace arrow_zerobus {

namespace {

// Type names are written without the leading '.', which resolves the same in a file with no
// package and reads better.
std::string TypeRef(const FieldDescriptorProto& field) {
  if (field.type() != FieldDescriptorProto::TYPE_MESSAGE &&
      field.type() != FieldDescriptorProto::TYPE_ENUM) {
    return std::string(ProtoTypeName(field.type()));
  }
  const std::string& name = field.type_name();
  return !name.empty() && name[0] == '.' ? name.substr(1) : name;
}

// The map entry message a field refers to, when it is one of `scope`'s nested types.
const DescriptorProto* FindMapEntry(const DescriptorProto& scope, const FieldDescriptorProto& f) {
  if (f.type() != FieldDescriptorProto::TYPE_MESSAGE ||
      f.label() != FieldDescriptorProto::LABEL_REPEATED) {
    return nullptr;
  }
  const std::string& ref = f.type_name();
  for (const auto& nested : scope.nested_type()) {
    if (!nested.options().map_entry()) continue;
    const std::string suffix = "." + nested.name();
    if (ref == nested.name() ||
        (ref.size() >= suffix.size() && ref.compare(ref.size() - suffix.size(), suffix.size(), suffix) == 0)) {
      return &nested;
    }
  }
  return nullptr;
}

void RenderEnum(const google::protobuf::EnumDescriptorProto& e, const std::string& indent,
                std::string* out) {
  *out += indent + "enum " + e.name() + " {\n";
  for (const auto& v : e.value()) {
    *out += indent + "  " + v.name() + " = " + std::to_string(v.number()) + ";\n";
  }
  *out += indent + "}\n";
}

void RenderMessage(const DescriptorProto& msg, const std::string& indent, std::string* out) {
  *out += indent + "message " + msg.name() + " {\n";
  const std::string inner = indent + "  ";
  for (const auto& e : msg.enum_type()) RenderEnum(e, inner, out);
  for (const auto& nested : msg.nested_type()) {
    if (nested.options().map_entry()) continue;  // written as map<K, V> at the field
    RenderMessage(nested, inner, out);
  }
  for (const auto& f : msg.field()) {
    *out += inner;
    if (const DescriptorProto* entry = FindMapEntry(msg, f);
        entry != nullptr && entry->field_size() == 2) {
      *out += "map<" + TypeRef(entry->field(0)) + ", " + TypeRef(entry->field(1)) + "> ";
    } else {
      switch (f.label()) {
        case FieldDescriptorProto::LABEL_REQUIRED: *out += "required "; break;
        case FieldDescriptorProto::LABEL_REPEATED: *out += "repeated "; break;
        default: *out += "optional "; break;
      }
      *out += TypeRef(f) + " ";
    }
    *out += f.name() + " = " + std::to_string(f.number());
    if (f.options().has_packed()) *out += f.options().packed() ? " [packed = true]" : " [packed = false]";
    *out += ";\n";
  }
  *out += indent + "}\n";
}

}  // namespace

std::string_view ProtoTypeName(FieldDescriptorProto::Type type) {
  switch (type) {
    case FieldDescriptorProto::TYPE_DOUBLE: return "double";
    case FieldDescriptorProto::TYPE_FLOAT: return "float";
    case FieldDescriptorProto::TYPE_INT64: return "int64";
    case FieldDescriptorProto::TYPE_UINT64: return "uint64";
    case FieldDescriptorProto::TYPE_INT32: return "int32";
    case FieldDescriptorProto::TYPE_FIXED64: return "fixed64";
    case FieldDescriptorProto::TYPE_FIXED32: return "fixed32";
    case FieldDescriptorProto::TYPE_BOOL: return "bool";
    case FieldDescriptorProto::TYPE_STRING: return "string";
    case FieldDescriptorProto::TYPE_GROUP: return "group";
    case FieldDescriptorProto::TYPE_MESSAGE: return "message";
    case FieldDescriptorProto::TYPE_BYTES: return "bytes";
    case FieldDescriptorProto::TYPE_UINT32: return "uint32";
    case FieldDescriptorProto::TYPE_ENUM: return "enum";
    case FieldDescriptorProto::TYPE_SFIXED32: return "sfixed32";
    case FieldDescriptorProto::TYPE_SFIXED64: return "sfixed64";
    case FieldDescriptorProto::TYPE_SINT32: return "sint32";
    case FieldDescriptorProto::TYPE_SINT64: return "sint64";
  }
  return "unknown";
}

std::string DescriptorToProtoText(const DescriptorProto& descriptor) {
  std::string out = "syntax = \"proto2\";\n\n";
  RenderMessage(descriptor, "", &out);
  return out;
}

}  // namespace arrow_zerobus
