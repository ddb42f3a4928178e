// The schema model of emulator tables. A table's schema is an arrow::Schema (with nullability)
// whose types are restricted to what Delta / Unity Catalog can hold:
//
//   Delta/UC          type_text            Arrow type
//   BOOLEAN           boolean              bool
//   TINYINT/SMALLINT  tinyint/smallint     int8 / int16
//   INT               int                  int32
//   BIGINT            bigint               int64
//   FLOAT / DOUBLE    float / double       float32 / float64
//   STRING            string               utf8
//   BINARY            binary               binary
//   DATE              date                 date32
//   TIMESTAMP         timestamp            timestamp[us, tz=UTC]
//   TIMESTAMP_NTZ     timestamp_ntz        timestamp[us] (no time zone)
//   DECIMAL(p,s)      decimal(p,s)         decimal128(p, s), 1 <= p <= 38
//   ARRAY<T>          array<T>             list<element: T>
//   STRUCT<...>       struct<a:T,...>      struct
//   MAP<K,V>          map<K,V>             map<K, V> (keys non-null)
//
// A schema comes from a declaration (JSON, see SchemaFromDeclaration), from the first stream's
// descriptor (SchemaFromDescriptor), or from a Delta log (SchemaFromDeltaJson).
// All functions here are pure and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/type_fwd.h>
#include <google/protobuf/descriptor.pb.h>

namespace arrow_zerobus::emulator {

using google::protobuf::DescriptorProto;

// Parses a Delta/UC type text ("bigint", "array<int>", "struct<a:int,b:string>",
// "map<string,bigint>", "decimal(10,2)", "timestamp_ntz", ...; case-insensitive, spaces
// allowed). Nested struct fields and array elements / map values parsed from text are nullable.
// The library's ParseDeltaTypeText with strict_names (identifier struct field names, unique;
// primitive map keys); errors are INVALID_ARGUMENT "bad type text '...' ...".
arrow::Result<std::shared_ptr<arrow::DataType>> ParseTypeText(std::string_view text);

// Table declaration JSON:
//   {"columns": [{"name": "id", "type": "bigint", "nullable": false},
//                {"name": "ts", "type": "timestamp"}, ...]}
// "nullable" defaults to true. Also accepted: a bare array of column objects. Column names must
// match [A-Za-z_][A-Za-z0-9_]*, be unique, and number at most 2000. Errors name the column.
arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDeclaration(std::string_view json);

// Checks that `schema` uses only the types above (INVALID_ARGUMENT naming the column if not).
arrow::Status ValidateTableSchema(const arrow::Schema& schema);

// The canonical table form of an Arrow schema: large/view strings -> utf8, date64 -> date32,
// any timestamp -> timestamp[us] (with tz -> "UTC"), decimals (p <= 38) -> decimal128, list
// element named "element", map value named "value". Other types: INVALID_ARGUMENT naming the
// column. Declare() applies this to the schemas it is given.
arrow::Result<std::shared_ptr<arrow::Schema>> NormalizeTableSchema(const arrow::Schema& schema);

// The table schema a stream creates when it writes to an unknown table (non-strict mode):
//   int32/sint32/sfixed32 -> int32; int64/sint64/sfixed64/uint32/fixed32/uint64/fixed64 -> int64;
//   float -> float32; double -> float64; bool; string -> utf8; bytes -> binary;
//   enum -> utf8 (the value's name); message -> struct; repeated T -> list<T> (elements
//   non-null); map entry -> map; required -> non-null; optional -> nullable;
//   repeated -> nullable list (absent decodes as an empty list).
// Groups and recursive messages give INVALID_ARGUMENT.
arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDescriptor(const DescriptorProto& descriptor);

// The check create_stream does: field names one-to-one with columns (at every depth), same
// count, required <-> NOT NULL and optional <-> nullable, compatible types (table below), extra
// *nullable* table columns allowed (they decode as NULL). INVALID_ARGUMENT says exactly which
// column/field is wrong and why.
//
//   column type            accepted proto field types
//   boolean                bool
//   tinyint/smallint/int/  any integer type (int32, int64, uint32, uint64, sint32, sint64,
//   bigint                 fixed32, fixed64, sfixed32, sfixed64) or enum (its number); values
//                          are range-checked per record
//   float                  float
//   double                 float, double
//   string                 string, enum (value name)
//   binary                 bytes, string
//   date                   any integer type (days since 1970-01-01)
//   timestamp(_ntz)        any integer type (microseconds since epoch)
//   decimal(p,s)           string (decimal text, e.g. "-123.45")
//   array<T>               repeated field of a type accepted for T (packed or not)
//   struct                 message, recursively
//   map<K,V>               repeated map-entry message {key = 1; value = 2} (labels of key
//                          and value are free: protoc makes them optional)
arrow::Status CheckDescriptorAgainstSchema(const DescriptorProto& descriptor,
                                           const arrow::Schema& schema);

// Type text as Unity Catalog shows it ("bigint", "array<int>", "decimal(10,2)", ...).
std::string TypeText(const arrow::DataType& type);
// Unity Catalog type_name ("LONG", "INT", "STRING", "TIMESTAMP", "ARRAY", ...).
std::string TypeName(const arrow::DataType& type);

// Delta schemaString (a JSON "struct" type with fields name/type/nullable/metadata).
std::string DeltaSchemaJson(const arrow::Schema& schema);
// The inverse; accepts what DeltaSchemaJson writes (and Delta's primitive names incl.
// "timestamp_ntz", "decimal(p,s)", array/struct/map objects).
arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromDeltaJson(std::string_view json);

// The `columns` array of the Unity Catalog tables endpoint, as JSON text:
//   [{"name","type_name","type_text","type_json","nullable","position"}, ...]
// type_json is the Delta StructField JSON of the column; position counts from 0.
std::string UnityCatalogColumnsJson(const arrow::Schema& schema);

}  // namespace arrow_zerobus::emulator
