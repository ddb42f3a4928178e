// Private: descriptor lookup and the binding of a DescriptorProto to a table schema, shared by
// the descriptor check and the record decoder's planner.
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

#include "arrow_zerobus/schema.h"

namespace arrow_zerobus::emulator::internal {

using google::protobuf::DescriptorProto;
using google::protobuf::EnumDescriptorProto;
using google::protobuf::FieldDescriptorProto;

// Finds nested messages and enums of one root DescriptorProto by type_name. Names are keyed by
// their path from the root ("Root", "Root.Inner"); a type_name resolves by proto scoping rules
// when relative, and by its longest known suffix when fully qualified (".pkg.Root.Inner"), since
// the package of the file the descriptor came from is not sent.
class DescriptorIndex {
 public:
  explicit DescriptorIndex(const DescriptorProto& root);
  const DescriptorProto& root() const { return *root_; }
  // `scope` is the path of the message the field is declared in.
  const DescriptorProto* FindMessage(std::string_view type_name, std::string_view scope,
                                     std::string* path_out = nullptr) const;
  const EnumDescriptorProto* FindEnum(std::string_view type_name, std::string_view scope) const;

 private:
  void Add(const DescriptorProto& message, const std::string& path);
  template <typename Map>
  typename Map::mapped_type Find(const Map& map, std::string_view type_name,
                                 std::string_view scope, std::string* path_out) const;
  const DescriptorProto* root_;
  std::unordered_map<std::string, const DescriptorProto*> messages_;
  std::unordered_map<std::string, const EnumDescriptorProto*> enums_;
};

struct EnumValues {
  std::unordered_map<int32_t, std::string> name_by_number;
  std::unordered_map<std::string, int32_t> number_by_name;
};

struct BoundMessage;

// One proto field bound to one column (or to the key/value of a map entry).
struct BoundField {
  std::string path;  // column path for messages, e.g. "readings.value"
  int32_t number = 0;
  FieldDescriptorProto::Type type = FieldDescriptorProto::TYPE_INT64;
  bool repeated = false;
  bool required = false;
  int column_index = 0;                 // among the parent's Arrow children
  std::shared_ptr<arrow::Field> column;  // the bound column (for lists: the list column)
  bool is_map = false;
  std::shared_ptr<BoundMessage> message;  // TYPE_MESSAGE: struct, list element or map entry
  std::shared_ptr<EnumValues> enum_values;
};

struct BoundMessage {
  std::string name;                 // path of the proto message from the root
  std::vector<BoundField> fields;   // in descriptor order
  std::vector<int> unbound_columns;  // nullable columns without a field: always NULL
};

// The binding behind CheckDescriptorAgainstSchema. Errors are Invalid and name the column path.
arrow::Result<std::shared_ptr<BoundMessage>> BindDescriptor(const DescriptorProto& descriptor,
                                                            const arrow::Schema& schema);

// Name of a proto field type ("int64", "string", "message", ...): the library's.
using ::arrow_zerobus::ProtoTypeName;
bool IsIntegerProtoType(FieldDescriptorProto::Type type);

}  // namespace arrow_zerobus::emulator::internal
