// Unity Catalog / Delta type text <-> Arrow types, shared by the wrapper (reading a table's
// columns), the Delta DDL helpers and the emulator's table model. Pure functions, thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace arrow_zerobus {

struct TypeTextOptions {
  // Table-model rules on top of the grammar: struct field names must match
  // [A-Za-z_][A-Za-z0-9_]* and be unique (case-insensitively), map keys must be primitive.
  // Off for text read from Unity Catalog, which may hold any Spark name (`b c`).
  bool strict_names = false;

  static TypeTextOptions Defaults() { return TypeTextOptions{}; }
};

// Parses a Unity Catalog / Delta type text ("bigint", "decimal(10,2)", "array<string>",
// "map<string,int>", "struct<a:int NOT NULL,`b c`:string COMMENT 'x'>", case-insensitive,
// spaces allowed) as the Arrow type the rows have in that column: boolean/bool bool,
// tinyint/byte int8, smallint/short int16, int/integer int32, bigint/long int64,
// float/real float32, double float64, string/varchar(n)/char(n) utf8, binary, date date32,
// timestamp/timestamp_ltz timestamp[us, UTC], timestamp_ntz timestamp[us],
// decimal/dec/numeric(p,s) decimal128 (default (10,0), 1 <= p <= 38, s <= p), variant utf8
// (JSON text), array<T> list<element: T>, map<K,V> map (keys non-null), struct<...> (at least one
// field). Nested fields, elements and map values are nullable unless NOT NULL is written.
// Conversion error naming the text, the position and the problem.
arrow::Result<std::shared_ptr<arrow::DataType>> ParseDeltaTypeText(
    std::string_view text, const TypeTextOptions& options = TypeTextOptions::Defaults());

// The type text of the Delta column an Arrow type is written to ("bigint", "array<int>",
// "struct<a:int,b:string not null>", "decimal(10,2)", ...; type-mapping.md third column).
// Unsigned integers widen (uint8 -> smallint, uint32 -> bigint), large/view variants map like
// the plain ones, dictionary/run-end/extension types as their values (arrow.json -> variant).
// Conversion error naming `path` for types Delta cannot hold (e.g. decimals over 38 digits).
arrow::Result<std::string> DeltaTypeText(const std::shared_ptr<arrow::DataType>& type,
                                         const std::string& path);

}  // namespace arrow_zerobus
