// Test helpers for the emulator storage tests: status macros, Arrow arrays from JSON, a tiny
// protobuf wire writer for hand-made (also malformed) records.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/json/from_string.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include "decode/table_schema.h"

#define AZS_CONCAT_INNER(a, b) a##b
#define AZS_CONCAT(a, b) AZS_CONCAT_INNER(a, b)
#define AZS_ASSIGN_OR_FAIL_IMPL(tmp, lhs, rexpr)    \
  auto tmp = (rexpr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).ValueOrDie()
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  AZS_ASSIGN_OR_FAIL_IMPL(AZS_CONCAT(_azs_result_, __LINE__), lhs, rexpr)
#define ASSERT_OK(expr)                                 \
  do {                                                  \
    ::arrow::Status _azs_st = (expr);                   \
    ASSERT_TRUE(_azs_st.ok()) << _azs_st.ToString();    \
  } while (false)

namespace arrow_zerobus::emulator::testing {

inline std::shared_ptr<arrow::Array> ArrayFromJson(const std::shared_ptr<arrow::DataType>& type,
                                                   const std::string& json) {
  auto result = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(result.ok()) << result.status().ToString() << " for " << json;
  return result.ok() ? *result : nullptr;
}

inline DescriptorProto ParseDescriptor(const std::string& text) {
  DescriptorProto d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &d)) << text;
  return d;
}

inline std::shared_ptr<arrow::Schema> Declared(const std::string& columns_json) {
  auto s = SchemaFromDeclaration("{\"columns\": [" + columns_json + "]}");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : nullptr;
}

// Protobuf wire writer.
class Wire {
 public:
  Wire& Varint(uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
    return *this;
  }
  Wire& Tag(uint32_t number, uint32_t wire_type) { return Varint((uint64_t{number} << 3) | wire_type); }
  Wire& VarintField(uint32_t number, uint64_t v) { return Tag(number, 0).Varint(v); }
  Wire& Fixed64Field(uint32_t number, uint64_t v) {
    Tag(number, 1);
    return Raw(std::string_view(reinterpret_cast<const char*>(&v), 8));
  }
  Wire& DoubleField(uint32_t number, double d) {
    uint64_t v;
    std::memcpy(&v, &d, 8);
    return Fixed64Field(number, v);
  }
  Wire& Fixed32Field(uint32_t number, uint32_t v) {
    Tag(number, 5);
    return Raw(std::string_view(reinterpret_cast<const char*>(&v), 4));
  }
  Wire& FloatField(uint32_t number, float f) {
    uint32_t v;
    std::memcpy(&v, &f, 4);
    return Fixed32Field(number, v);
  }
  Wire& BytesField(uint32_t number, const Wire& nested) { return BytesField(number, nested.str()); }
  Wire& BytesField(uint32_t number, const char* s) { return BytesField(number, std::string_view(s)); }
  Wire& BytesField(uint32_t number, std::string_view s) {
    Tag(number, 2).Varint(s.size());
    return Raw(s);
  }
  Wire& Raw(std::string_view s) {
    bytes_.append(s.data(), s.size());
    return *this;
  }
  const std::string& str() const { return bytes_; }
  operator std::string() const { return bytes_; }

 private:
  std::string bytes_;
};

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

inline std::vector<std::string_view> Views(const std::vector<std::string>& records) {
  return std::vector<std::string_view>(records.begin(), records.end());
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The actions of every commit of a Delta table, in version order (an independent reader of the
// log, used to check what the store wrote).
inline std::vector<std::vector<nlohmann::json>> ReadDeltaLog(const std::string& table_dir) {
  std::vector<std::vector<nlohmann::json>> commits;
  for (int64_t v = 0;; ++v) {
    char name[32];
    std::snprintf(name, sizeof(name), "%020lld.json", static_cast<long long>(v));
    std::string path = table_dir + "/_delta_log/" + name;
    if (!std::filesystem::exists(path)) break;
    std::vector<nlohmann::json> actions;
    std::istringstream lines(ReadText(path));
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty()) actions.push_back(nlohmann::json::parse(line));
    }
    commits.push_back(std::move(actions));
  }
  return commits;
}

inline arrow::Result<std::shared_ptr<arrow::Table>> ReadParquet(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
  std::shared_ptr<arrow::Table> table;
  ARROW_RETURN_NOT_OK(reader->ReadTable(&table));
  return table;
}

// All rows of the data files the log adds (no removes are ever written by the store).
inline arrow::Result<std::shared_ptr<arrow::Table>> ReadDeltaRows(const std::string& table_dir,
                                                                  std::shared_ptr<arrow::Schema> schema) {
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& commit : ReadDeltaLog(table_dir)) {
    for (const auto& action : commit) {
      if (!action.contains("add")) continue;
      ARROW_ASSIGN_OR_RAISE(auto t, ReadParquet(table_dir + "/" + action["add"]["path"].get<std::string>()));
      ARROW_ASSIGN_OR_RAISE(t, t->ReplaceSchemaMetadata(nullptr)->CombineChunks());
      parts.push_back(t);
    }
  }
  if (parts.empty()) return arrow::Table::MakeEmpty(schema);
  return arrow::ConcatenateTables(parts);
}

}  // namespace arrow_zerobus::emulator::testing
