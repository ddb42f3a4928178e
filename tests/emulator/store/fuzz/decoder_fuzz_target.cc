#include "decoder_fuzz_target.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <arrow/record_batch.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include "decode/record_decoder.h"
#include "decode/table_schema.h"

namespace arrow_zerobus::emulator::fuzz {

namespace {

constexpr const char* kDescriptor = R"pb(
  name: "Row"
  field { name: "id" number: 1 label: LABEL_REQUIRED type: TYPE_INT64 }
  field { name: "name" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "d" number: 3 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field { name: "f" number: 4 label: LABEL_OPTIONAL type: TYPE_FLOAT }
  field { name: "b" number: 5 label: LABEL_OPTIONAL type: TYPE_BOOL }
  field { name: "s32" number: 6 label: LABEL_OPTIONAL type: TYPE_SINT32 }
  field { name: "fx" number: 7 label: LABEL_OPTIONAL type: TYPE_FIXED64 }
  field { name: "kind" number: 8 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: "Kind" }
  field { name: "price" number: 9 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "nums" number: 10 label: LABEL_REPEATED type: TYPE_INT32 }
  field { name: "tags" number: 11 label: LABEL_REPEATED type: TYPE_STRING }
  field { name: "sub" number: 12 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Sub" }
  field { name: "attrs" number: 13 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "AttrsEntry" }
  field { name: "subs" number: 14 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "Sub" }
  field { name: "raw" number: 15 label: LABEL_OPTIONAL type: TYPE_BYTES }
  field { name: "ts" number: 16 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "day" number: 17 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "tiny" number: 18 label: LABEL_OPTIONAL type: TYPE_INT32 }
  nested_type {
    name: "Sub"
    field { name: "x" number: 1 label: LABEL_REQUIRED type: TYPE_DOUBLE }
    field { name: "inner" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Sub.Inner" }
    nested_type { name: "Inner" field { name: "v" number: 1 label: LABEL_REPEATED type: TYPE_SINT64 } }
  }
  nested_type {
    name: "AttrsEntry" options { map_entry: true }
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "Sub" }
  }
  enum_type { name: "Kind" value { name: "A" number: 0 } value { name: "B" number: 5 } }
)pb";

constexpr const char* kTable = R"j({"columns": [
  {"name": "id", "type": "bigint", "nullable": false}, {"name": "name", "type": "string"},
  {"name": "d", "type": "double"}, {"name": "f", "type": "float"}, {"name": "b", "type": "boolean"},
  {"name": "s32", "type": "int"}, {"name": "fx", "type": "bigint"}, {"name": "kind", "type": "string"},
  {"name": "price", "type": "decimal(20,4)"}, {"name": "nums", "type": "array<int>"},
  {"name": "tags", "type": "array<string>"},
  {"name": "sub", "type": "struct<x:double not null,inner:struct<v:array<bigint>>>"},
  {"name": "attrs", "type": "map<string,struct<x:double not null,inner:struct<v:array<bigint>>>>"},
  {"name": "subs", "type": "array<struct<x:double not null,inner:struct<v:array<bigint>>>>"},
  {"name": "raw", "type": "binary"}, {"name": "ts", "type": "timestamp"}, {"name": "day", "type": "date"},
  {"name": "tiny", "type": "tinyint"}, {"name": "extra", "type": "map<int,string>"}]})j";

[[noreturn]] void Fail(const char* what, const arrow::Status& st) {
  std::fprintf(stderr, "fuzz invariant broken: %s: %s\n", what, st.ToString().c_str());
  std::abort();
}

struct Setup {
  std::shared_ptr<arrow::Schema> table;
  std::unique_ptr<RecordDecoder> proto;
  std::unique_ptr<RecordDecoder> json;
  Setup() {
    // Garbage descriptors make libprotobuf log UTF-8 complaints; they are expected here.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    DescriptorProto descriptor;
    if (!google::protobuf::TextFormat::ParseFromString(kDescriptor, &descriptor)) std::abort();
    auto schema = SchemaFromDeclaration(kTable);
    if (!schema.ok()) Fail("table", schema.status());
    table = *schema;
    auto p = RecordDecoder::MakeProto(descriptor, table);
    if (!p.ok()) Fail("proto decoder", p.status());
    proto = std::move(*p);
    auto j = RecordDecoder::MakeJson(table);
    if (!j.ok()) Fail("json decoder", j.status());
    json = std::move(*j);
  }
};

void CheckDecode(RecordDecoder* decoder, const std::vector<std::string_view>& records) {
  auto batch = decoder->Decode(records);
  if (!batch.ok()) {
    if (ToStatusCode(batch.status()) != StatusCode::kInvalidArgument) Fail("error code", batch.status());
    return;
  }
  if ((*batch)->num_rows() != static_cast<int64_t>(records.size())) Fail("row count", arrow::Status::OK());
  arrow::Status st = (*batch)->ValidateFull();
  if (!st.ok()) Fail("decoded batch", st);
}

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  static Setup setup;
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  std::vector<std::string_view> records;
  size_t pos = 1;
  while (pos < size && records.size() < 64) {
    size_t len = data[pos];
    if (pos + 1 < size) len |= static_cast<size_t>(data[pos + 1]) << 8;
    pos += 2;
    len = std::min(len, pos < size ? size - pos : 0);
    records.emplace_back(reinterpret_cast<const char*>(data + std::min(pos, size)), len);
    pos += len;
  }
  if (mode == 0) {
    CheckDecode(setup.proto.get(), records);
  } else if (mode == 1) {
    CheckDecode(setup.json.get(), records);
  } else if (!records.empty()) {
    // Garbage descriptor bytes: parse, derive a table, check, decode the other records with it.
    DescriptorProto descriptor;
    if (!descriptor.ParseFromArray(records[0].data(), static_cast<int>(records[0].size()))) return 0;
    (void)CheckDescriptorAgainstSchema(descriptor, *setup.table);
    auto schema = SchemaFromDescriptor(descriptor);
    if (!schema.ok()) return 0;
    arrow::Status st = ValidateTableSchema(**schema);
    if (!st.ok()) Fail("derived schema", st);
    auto decoder = RecordDecoder::MakeProto(descriptor, *schema);
    if (!decoder.ok()) Fail("descriptor does not match the table made from it", decoder.status());
    records.erase(records.begin());
    CheckDecode(decoder->get(), records);
    (void)DeltaSchemaJson(**schema);
    (void)UnityCatalogColumnsJson(**schema);
  }
  return 0;
}

}  // namespace arrow_zerobus::emulator::fuzz
