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
#include <arrow/json/from_string.h>
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

}  // namespace arrow_zerobus::emulator::testing
