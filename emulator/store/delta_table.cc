#include "store/delta_table_internal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unistd.h>

#include <arrow/array.h>
#include <arrow/io/memory.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/util/checked_cast.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include "decode/emulator_status.h"
#include "decode/table_schema.h"
#include "store/file_util_internal.h"

namespace arrow_zerobus::emulator::internal {

using arrow::internal::checked_cast;
using json = nlohmann::json;

namespace {

constexpr const char* kEngineInfo = "arrow-zerobus-emulator/0.1.0";
constexpr size_t kMaxStatsStringBytes = 32;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool HasTimestampNtz(const arrow::DataType& type) {
  if (type.id() == arrow::Type::TIMESTAMP) {
    return checked_cast<const arrow::TimestampType&>(type).timezone().empty();
  }
  for (const auto& child : type.fields()) {
    if (HasTimestampNtz(*child->type())) return true;
  }
  return false;
}

json ProtocolAction(const arrow::Schema& schema) {
  bool ntz = std::any_of(schema.fields().begin(), schema.fields().end(),
                         [](const auto& f) { return HasTimestampNtz(*f->type()); });
  if (!ntz) return json{{"protocol", {{"minReaderVersion", 1}, {"minWriterVersion", 2}}}};
  // timestamp_ntz is a reader+writer table feature: needs table-features protocol (3, 7).
  return json{{"protocol",
               {{"minReaderVersion", 3},
                {"minWriterVersion", 7},
                {"readerFeatures", json::array({"timestampNtz"})},
                {"writerFeatures", json::array({"timestampNtz"})}}}};
}

// Days since epoch -> civil date (inverse of DaysFromCivil).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool FormatDate(int64_t days, std::string* out) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) return false;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", static_cast<int>(y), m, d);
  *out = buf;
  return true;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Delta stats store timestamps with millisecond precision: round the bound outward.
bool FormatTimestamp(int64_t micros, bool round_up, bool utc, std::string* out) {
  int64_t millis = FloorDiv(micros, 1000);
  if (round_up && millis * 1000 != micros) ++millis;
  int64_t days = FloorDiv(millis, 86400000);
  int64_t ms_of_day = millis - days * 86400000;
  std::string date;
  if (!FormatDate(days, &date)) return false;
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%sT%02d:%02d:%02d.%03d%s", date.c_str(),
                static_cast<int>(ms_of_day / 3600000), static_cast<int>(ms_of_day / 60000 % 60),
                static_cast<int>(ms_of_day / 1000 % 60), static_cast<int>(ms_of_day % 1000),
                utc ? "Z" : "");
  *out = buf;
  return true;
}

template <typename ArrayType, typename T>
bool MinMax(const std::vector<std::shared_ptr<arrow::Array>>& chunks, T* min, T* max) {
  bool any = false;
  for (const auto& chunk : chunks) {
    const auto& array = checked_cast<const ArrayType&>(*chunk);
    for (int64_t i = 0; i < array.length(); ++i) {
      if (array.IsNull(i)) continue;
      T v = static_cast<T>(array.Value(i));
      if constexpr (std::is_floating_point_v<T>) {
        if (std::isnan(v)) continue;
      }
      if (!any || v < *min) *min = v;
      if (!any || v > *max) *max = v;
      any = true;
    }
  }
  return any;
}

void ColumnStats(const arrow::Field& field, const std::vector<std::shared_ptr<arrow::Array>>& chunks,
                 json* min_values, json* max_values) {
  const std::string& name = field.name();
  const auto& type = *field.type();
  switch (type.id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64: {
      int64_t lo = 0, hi = 0;
      bool any = false;
      if (type.id() == arrow::Type::INT8) any = MinMax<arrow::Int8Array>(chunks, &lo, &hi);
      if (type.id() == arrow::Type::INT16) any = MinMax<arrow::Int16Array>(chunks, &lo, &hi);
      if (type.id() == arrow::Type::INT32) any = MinMax<arrow::Int32Array>(chunks, &lo, &hi);
      if (type.id() == arrow::Type::INT64) any = MinMax<arrow::Int64Array>(chunks, &lo, &hi);
      if (any) {
        (*min_values)[name] = lo;
        (*max_values)[name] = hi;
      }
      return;
    }
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE: {
      double lo = 0, hi = 0;
      bool any = type.id() == arrow::Type::FLOAT ? MinMax<arrow::FloatArray>(chunks, &lo, &hi)
                                                 : MinMax<arrow::DoubleArray>(chunks, &lo, &hi);
      if (any && std::isfinite(lo) && std::isfinite(hi)) {
        (*min_values)[name] = lo;
        (*max_values)[name] = hi;
      }
      return;
    }
    case arrow::Type::DATE32: {
      int64_t lo = 0, hi = 0;
      std::string a, b;
      if (MinMax<arrow::Date32Array>(chunks, &lo, &hi) && FormatDate(lo, &a) && FormatDate(hi, &b)) {
        (*min_values)[name] = a;
        (*max_values)[name] = b;
      }
      return;
    }
    case arrow::Type::TIMESTAMP: {
      bool utc = !checked_cast<const arrow::TimestampType&>(type).timezone().empty();
      int64_t lo = 0, hi = 0;
      std::string a, b;
      if (MinMax<arrow::TimestampArray>(chunks, &lo, &hi) && FormatTimestamp(lo, false, utc, &a) &&
          FormatTimestamp(hi, true, utc, &b)) {
        (*min_values)[name] = a;
        (*max_values)[name] = b;
      }
      return;
    }
    case arrow::Type::STRING: {
      std::string_view lo, hi;
      bool any = false;
      for (const auto& chunk : chunks) {
        const auto& array = checked_cast<const arrow::StringArray&>(*chunk);
        for (int64_t i = 0; i < array.length(); ++i) {
          if (array.IsNull(i)) continue;
          std::string_view v = array.GetView(i);
          if (!any || v < lo) lo = v;
          if (!any || v > hi) hi = v;
          any = true;
        }
      }
      if (!any) return;
      // A prefix of the minimum is still a lower bound; a truncated maximum is not an upper one.
      size_t cut = std::min(lo.size(), kMaxStatsStringBytes);
      while (cut > 0 && cut < lo.size() && (static_cast<unsigned char>(lo[cut]) & 0xC0) == 0x80) --cut;
      (*min_values)[name] = std::string(lo.substr(0, cut));
      if (hi.size() <= kMaxStatsStringBytes) (*max_values)[name] = std::string(hi);
      return;
    }
    default:
      return;  // bool, binary, decimal, nested: no min/max
  }
}

}  // namespace

std::string CommitFileName(int64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld.json", static_cast<long long>(version));
  return buf;
}

std::string ComputeStatsJson(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                             const arrow::Schema& schema) {
  int64_t rows = 0;
  for (const auto& b : batches) rows += b->num_rows();
  json min_values = json::object(), max_values = json::object(), null_count = json::object();
  for (int c = 0; c < schema.num_fields(); ++c) {
    const auto& field = *schema.field(c);
    auto id = field.type()->id();
    if (id == arrow::Type::LIST || id == arrow::Type::MAP || id == arrow::Type::STRUCT) continue;
    std::vector<std::shared_ptr<arrow::Array>> chunks;
    int64_t nulls = 0;
    for (const auto& b : batches) {
      chunks.push_back(b->column(c));
      nulls += b->column(c)->null_count();
    }
    null_count[field.name()] = nulls;
    ColumnStats(field, chunks, &min_values, &max_values);
  }
  return Dump(json{{"numRecords", rows},
                   {"minValues", std::move(min_values)},
                   {"maxValues", std::move(max_values)},
                   {"nullCount", std::move(null_count)}});
}

bool DeltaTable::Exists(const std::string& path) {
  return FileExists(path + "/_delta_log/" + CommitFileName(0));
}

arrow::Result<std::unique_ptr<DeltaTable>> DeltaTable::Create(const std::string& path,
                                                              const std::string& name,
                                                              std::shared_ptr<arrow::Schema> schema,
                                                              bool fsync) {
  ARROW_RETURN_NOT_OK(MakeDirs(path + "/_delta_log", fsync));
  int64_t now = NowMillis();
  std::string commit;
  commit += Dump(json{{"commitInfo",
                       {{"timestamp", now},
                        {"operation", "CREATE TABLE"},
                        {"operationParameters",
                         {{"mode", "ErrorIfExists"}, {"partitionBy", "[]"}}},
                        {"isBlindAppend", true},
                        {"engineInfo", kEngineInfo}}}}) + "\n";
  commit += Dump(ProtocolAction(*schema)) + "\n";
  commit += Dump(json{{"metaData",
                       {{"id", RandomUuid()},
                        {"name", name},
                        {"format", {{"provider", "parquet"}, {"options", json::object()}}},
                        {"schemaString", DeltaSchemaJson(*schema)},
                        {"partitionColumns", json::array()},
                        {"configuration", json::object()},
                        {"createdTime", now}}}}) + "\n";
  ARROW_RETURN_NOT_OK(
      PublishFileNoReplace(path, path + "/_delta_log/" + CommitFileName(0), commit, fsync));
  return std::unique_ptr<DeltaTable>(new DeltaTable(path, std::move(schema), 0, fsync));
}

arrow::Result<std::unique_ptr<DeltaTable>> DeltaTable::Open(const std::string& path, bool fsync) {
  const std::string log_dir = path + "/_delta_log";
  // Temporary commit files left by a crash never became part of the table.
  ARROW_ASSIGN_OR_RAISE(auto top, ListDir(path));
  for (const auto& name : top) {
    if (name.starts_with(".tmp-commit-")) ::unlink((path + "/" + name).c_str());
  }
  ARROW_ASSIGN_OR_RAISE(auto names, ListDir(log_dir));
  std::vector<int64_t> versions;
  for (const auto& name : names) {
    if (name.size() == 25 && name.ends_with(".json") &&
        std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; })) {
      versions.push_back(std::stoll(name.substr(0, 20)));
    }
  }
  std::sort(versions.begin(), versions.end());
  if (versions.empty() || versions[0] != 0) {
    return arrow::Status::IOError("'", path, "' is not a Delta table written by the emulator (no commit 0)");
  }
  for (size_t i = 0; i < versions.size(); ++i) {
    if (versions[i] != static_cast<int64_t>(i)) {
      return arrow::Status::IOError("Delta log of '", path, "' has a gap before version ", versions[i]);
    }
  }
  std::string schema_string;
  for (int64_t version : versions) {
    ARROW_ASSIGN_OR_RAISE(std::string text, ReadFile(log_dir + "/" + CommitFileName(version)));
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      json action = json::parse(line, nullptr, false);
      if (action.is_discarded()) {
        return arrow::Status::IOError("Delta log ", CommitFileName(version), " of '", path,
                                      "' has a line that is not JSON");
      }
      if (action.contains("metaData")) {
        schema_string = action["metaData"].value("schemaString", "");
      }
      if (action.contains("protocol")) {
        const auto& p = action["protocol"];
        if (p.value("minReaderVersion", 1) > 3 || p.value("minWriterVersion", 2) > 7) {
          return Unimplemented("Delta table '" + path + "' needs a newer protocol");
        }
        if (p.contains("writerFeatures")) {
          for (const auto& f : p["writerFeatures"]) {
            if (f != "timestampNtz") {
              return Unimplemented("Delta table '" + path + "' uses table feature " + f.dump() +
                                   ", which the emulator cannot write");
            }
          }
        }
      }
    }
  }
  if (schema_string.empty()) {
    return arrow::Status::IOError("Delta log of '", path, "' has no metaData with a schemaString");
  }
  ARROW_ASSIGN_OR_RAISE(auto schema, SchemaFromDeltaJson(schema_string));
  return std::unique_ptr<DeltaTable>(new DeltaTable(path, std::move(schema), versions.back(), fsync));
}

arrow::Result<DeltaCommitResult> DeltaTable::Append(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(schema_, batches));
  DeltaCommitResult result;
  result.rows = table->num_rows();

  // 1. The data file, fsynced with its directory entry before the commit can name it.
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create(1 << 20));
  auto properties = parquet::WriterProperties::Builder()
                        .compression(parquet::Compression::SNAPPY)
                        ->build();
  auto arrow_properties = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), sink,
                                                 std::max<int64_t>(1, table->num_rows()),
                                                 properties, arrow_properties));
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  result.data_file = "part-00000-" + RandomUuid() + "-c000.snappy.parquet";
  result.file_bytes = buffer->size();
  ARROW_RETURN_NOT_OK(WriteNewFile(path_ + "/" + result.data_file,
                                   std::string_view(reinterpret_cast<const char*>(buffer->data()),
                                                    static_cast<size_t>(buffer->size())),
                                   fsync_));
  if (fsync_) ARROW_RETURN_NOT_OK(FsyncDir(path_));

  // 2. The commit: published atomically as the next version, never over an existing one.
  int64_t now = NowMillis();
  std::string commit;
  commit += Dump(json{{"commitInfo",
                       {{"timestamp", now},
                        {"operation", "WRITE"},
                        {"operationParameters", {{"mode", "Append"}}},
                        {"isBlindAppend", true},
                        {"engineInfo", kEngineInfo},
                        {"operationMetrics",
                         {{"numFiles", "1"},
                          {"numOutputRows", std::to_string(result.rows)},
                          {"numOutputBytes", std::to_string(result.file_bytes)}}}}}}) + "\n";
  commit += Dump(json{{"add",
                       {{"path", result.data_file},
                        {"partitionValues", json::object()},
                        {"size", result.file_bytes},
                        {"modificationTime", now},
                        {"dataChange", true},
                        {"stats", ComputeStatsJson(batches, *schema_)}}}}) + "\n";
  int64_t version = version_ + 1;
  ARROW_RETURN_NOT_OK(PublishFileNoReplace(path_, path_ + "/_delta_log/" + CommitFileName(version),
                                           commit, fsync_));
  version_ = version;
  result.version = version;
  return result;
}

}  // namespace arrow_zerobus::emulator::internal
