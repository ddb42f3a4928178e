// libFuzzer target: the emulator's JSON rows decoder (emulator/decode/json_decoder.cc,
// RecordDecoder::MakeJson) on arbitrary bytes, with one fixed table schema that holds every
// type the decoder maps (clang, -fsanitize=fuzzer,address,undefined; built by
// tests/fuzz/CMakeLists.txt, run by scripts/fuzz.sh with json_rows.dict).
//
// The input is split on '\n' into records (one JSON object each, as a JSON stream sends them;
// at most 64). One decoder serves every input, as one serves a whole stream. Findings (abort):
//  - a crash or sanitizer report;
//  - a failure that is not INVALID_ARGUMENT, or does not name the record ("record <i>: ...");
//  - a decoded batch with the wrong row count or schema, or that fails arrow ValidateFull;
//  - records that decode differently alone than inside the batch: every record before the
//    failing one must decode alone, the failing one must fail alone, and when all succeed each
//    record alone equals its row of the batch (no state leaks between records or calls).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/array.h>
#include <arrow/compare.h>
#include <arrow/record_batch.h>

#include "decode/record_decoder.h"
#include "decode/table_schema.h"

namespace {

using arrow_zerobus::emulator::RecordDecoder;
using arrow_zerobus::emulator::StatusCode;
using arrow_zerobus::emulator::ToStatusCode;

// The NOT NULL column is last: records reach every other column before it can fail them.
constexpr const char* kTable = R"j({"columns": [
  {"name": "b", "type": "boolean"}, {"name": "i8", "type": "tinyint"},
  {"name": "i16", "type": "smallint"}, {"name": "i32", "type": "int"},
  {"name": "i64", "type": "bigint"}, {"name": "f", "type": "float"},
  {"name": "d", "type": "double"}, {"name": "s", "type": "string"},
  {"name": "bin", "type": "binary"}, {"name": "dec", "type": "decimal(38,10)"},
  {"name": "dec5", "type": "decimal(5,0)"}, {"name": "day", "type": "date"},
  {"name": "ts", "type": "timestamp"}, {"name": "ntz", "type": "timestamp_ntz"},
  {"name": "ai", "type": "array<int>"}, {"name": "as", "type": "array<string>"},
  {"name": "aa", "type": "array<array<bigint>>"},
  {"name": "ms", "type": "map<string,bigint>"}, {"name": "mi", "type": "map<int,string>"},
  {"name": "mb", "type": "map<boolean,double>"}, {"name": "md", "type": "map<date,array<tinyint>>"},
  {"name": "mt", "type": "map<timestamp,decimal(9,3)>"}, {"name": "mbin", "type": "map<binary,int>"},
  {"name": "st", "type": "struct<x:double not null,inner:struct<v:array<bigint>,t:timestamp_ntz>>"},
  {"name": "subs", "type": "array<struct<a:int not null,b:binary,m:map<string,struct<z:boolean>>>>"},
  {"name": "req", "type": "bigint", "nullable": false}]})j";

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "json rows fuzz finding: %s\n", what.c_str());
  std::abort();
}

struct Setup {
  std::shared_ptr<arrow::Schema> table;
  std::unique_ptr<RecordDecoder> decoder;
  Setup() {
    auto schema = arrow_zerobus::emulator::SchemaFromDeclaration(kTable);
    if (!schema.ok()) Fail("table: " + schema.status().ToString());
    table = *schema;
    auto d = RecordDecoder::MakeJson(table);
    if (!d.ok()) Fail("decoder: " + d.status().ToString());
    decoder = std::move(*d);
  }
};

// The record index a decode error names ("record <i>: ..."), or -1.
int64_t FailedRecord(const arrow::Status& st, size_t records) {
  if (ToStatusCode(st) != StatusCode::kInvalidArgument) Fail("error is not INVALID_ARGUMENT: " + st.ToString());
  const std::string& m = st.message();
  if (m.rfind("record ", 0) != 0) Fail("error does not name the record: " + st.ToString());
  size_t pos = 7;
  int64_t k = 0;
  bool digits = false;
  while (pos < m.size() && m[pos] >= '0' && m[pos] <= '9') {
    k = k * 10 + (m[pos++] - '0');
    digits = true;
    if (k > 1000000) break;
  }
  if (!digits || k >= static_cast<int64_t>(records)) Fail("error names no record in range: " + st.ToString());
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Setup setup;
  std::vector<std::string_view> records;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= text.size() && records.size() < 64) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    records.push_back(text.substr(start, end - start));
    start = end + 1;
    if (start == text.size()) break;  // a final newline ends the last record
  }

  auto all = setup.decoder->Decode(records);
  int64_t failed = -1;
  if (!all.ok()) {
    failed = FailedRecord(all.status(), records.size());
  } else {
    const arrow::RecordBatch& batch = **all;
    if (batch.num_rows() != static_cast<int64_t>(records.size())) Fail("row count");
    if (!batch.schema()->Equals(*setup.table, /*check_metadata=*/false)) Fail("schema differs from the table's");
    arrow::Status st = batch.ValidateFull();
    if (!st.ok()) Fail("decoded batch does not validate: " + st.ToString());
  }

  // Each record alone, through the same decoder.
  const auto equal = arrow::EqualOptions::Defaults().nans_equal(true);
  const size_t limit = failed >= 0 ? static_cast<size_t>(failed) + 1 : records.size();
  for (size_t i = 0; i < limit; ++i) {
    auto one = setup.decoder->Decode(std::span<const std::string_view>(&records[i], 1));
    if (static_cast<int64_t>(i) == failed) {
      if (one.ok()) Fail("record " + std::to_string(i) + " failed the batch but decodes alone");
      FailedRecord(one.status(), 1);
      continue;
    }
    if (!one.ok()) {
      Fail("record " + std::to_string(i) + " decoded in the batch but fails alone: " + one.status().ToString());
    }
    if (!all.ok()) continue;
    for (int c = 0; c < (*one)->num_columns(); ++c) {
      auto row = (*all)->column(c)->Slice(static_cast<int64_t>(i), 1);
      if (!row->Equals(*(*one)->column(c), equal)) {
        Fail("record " + std::to_string(i) + " column '" + setup.table->field(c)->name() +
             "' decodes differently alone: " + row->ToString() + " vs " + (*one)->column(c)->ToString());
      }
    }
  }
  return 0;
}
