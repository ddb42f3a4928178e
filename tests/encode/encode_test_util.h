// Test helpers: parse encoded rows with libprotobuf's DynamicMessage, and an independent
// reference that walks Arrow values through the generic Scalar API (no encoder code) to say
// what each row must decode to, or that it must fail.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/extension_type.h>
#include <arrow/util/decimal.h>
#include <arrow/util/float16.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/encode.h"

#define AZ_CONCAT_INNER(a, b) a##b
#define AZ_CONCAT(a, b) AZ_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, rexpr)           \
  auto tmp = (rexpr);                                        \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();          \
  lhs = std::move(tmp).ValueOrDie()
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL(AZ_CONCAT(_az_result_, __LINE__), lhs, rexpr)

namespace arrow_zerobus::testing {

namespace pb = google::protobuf;

inline void StripMapEntry(DescriptorProto* m) {
  m->mutable_options()->clear_map_entry();
  for (auto& nested : *m->mutable_nested_type()) StripMapEntry(&nested);
}

// A DescriptorPool holding one message type, and a factory for DynamicMessages of it.
// Map entry options are dropped for parsing (the wire form is the same) so reflection shows map
// entries in wire order, duplicates included; the real descriptor must build as well.
class ProtoSchema {
 public:
  explicit ProtoSchema(const DescriptorProto& message) {
    pb::FileDescriptorProto file;
    file.set_name("encode_test.proto");
    file.set_syntax("proto2");
    *file.add_message_type() = message;
    if (check_pool_.BuildFile(file) == nullptr) throw std::runtime_error("descriptor does not build");
    StripMapEntry(file.mutable_message_type(0));
    const pb::FileDescriptor* built = pool_.BuildFile(file);
    if (built == nullptr) throw std::runtime_error("descriptor does not build");
    descriptor_ = built->message_type(0);
    prototype_ = factory_.GetPrototype(descriptor_);
  }
  const pb::Descriptor* descriptor() const { return descriptor_; }
  std::unique_ptr<pb::Message> Parse(std::string_view bytes) const {
    std::unique_ptr<pb::Message> m(prototype_->New());
    if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return nullptr;
    return m;
  }

 private:
  pb::DescriptorPool check_pool_;
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
  const pb::Descriptor* descriptor_ = nullptr;
  const pb::Message* prototype_ = nullptr;
};

// Strips dictionary, run-end and extension wrappers from a scalar.
inline std::shared_ptr<arrow::Scalar> Decode(std::shared_ptr<arrow::Scalar> s) {
  while (true) {
    switch (s->type->id()) {
      case arrow::Type::DICTIONARY: {
        if (!s->is_valid) return arrow::MakeNullScalar(
            static_cast<const arrow::DictionaryType&>(*s->type).value_type());
        s = static_cast<const arrow::DictionaryScalar&>(*s).GetEncodedValue().ValueOrDie();
        break;
      }
      case arrow::Type::RUN_END_ENCODED:
        s = static_cast<const arrow::RunEndEncodedScalar&>(*s).value;
        break;
      case arrow::Type::EXTENSION:
        if (!s->is_valid) return arrow::MakeNullScalar(
            static_cast<const arrow::ExtensionType&>(*s->type).storage_type());
        s = static_cast<const arrow::ExtensionScalar&>(*s).value;
        break;
      default:
        return s;
    }
  }
}

// Canonical decimal text computed from Arrow's own integer formatting.
inline std::string DecimalText(const std::string& integer, int32_t scale) {
  bool neg = !integer.empty() && integer[0] == '-';
  std::string digits = neg ? integer.substr(1) : integer;
  if (digits == "0") neg = false;
  std::string out;
  if (scale <= 0) {
    out = digits;
    if (digits != "0") out += std::string(static_cast<size_t>(-scale), '0');
  } else {
    if (static_cast<int32_t>(digits.size()) <= scale) {
      digits = std::string(static_cast<size_t>(scale) - digits.size() + 1, '0') + digits;
    }
    out = digits.substr(0, digits.size() - scale) + "." + digits.substr(digits.size() - scale);
  }
  return (neg ? "-" : "") + out;
}

// The integer a scalar stands for after the type-mapping rules, or nullopt if it overflows
// (timestamps in s/ms beyond int64 microseconds).
inline std::optional<__int128> IntegerValue(const arrow::Scalar& s) {
  using T = arrow::Type;
  switch (s.type->id()) {
    case T::INT8: return static_cast<const arrow::Int8Scalar&>(s).value;
    case T::INT16: return static_cast<const arrow::Int16Scalar&>(s).value;
    case T::INT32: return static_cast<const arrow::Int32Scalar&>(s).value;
    case T::INT64: return static_cast<const arrow::Int64Scalar&>(s).value;
    case T::UINT8: return static_cast<const arrow::UInt8Scalar&>(s).value;
    case T::UINT16: return static_cast<const arrow::UInt16Scalar&>(s).value;
    case T::UINT32: return static_cast<const arrow::UInt32Scalar&>(s).value;
    case T::UINT64: return static_cast<const arrow::UInt64Scalar&>(s).value;
    case T::DATE32: return static_cast<const arrow::Date32Scalar&>(s).value;
    case T::DATE64: {
      const __int128 ms = static_cast<const arrow::Date64Scalar&>(s).value;
      __int128 q = ms / 86400000;
      if (ms % 86400000 != 0 && ms < 0) q -= 1;
      return q;
    }
    case T::TIMESTAMP: {
      const __int128 v = static_cast<const arrow::TimestampScalar&>(s).value;
      __int128 us;
      switch (static_cast<const arrow::TimestampType&>(*s.type).unit()) {
        case arrow::TimeUnit::SECOND: us = v * 1000000; break;
        case arrow::TimeUnit::MILLI: us = v * 1000; break;
        case arrow::TimeUnit::MICRO: us = v; break;
        default: {
          us = v / 1000;
          if (v % 1000 != 0 && v < 0) us -= 1;
        }
      }
      if (us > INT64_MAX || us < INT64_MIN) return std::nullopt;
      return us;
    }
    default:
      return std::nullopt;
  }
}

inline bool InRange(__int128 v, pb::FieldDescriptor::Type t) {
  using F = pb::FieldDescriptor;
  switch (t) {
    case F::TYPE_INT32: case F::TYPE_SINT32: case F::TYPE_SFIXED32: case F::TYPE_ENUM:
      return v >= INT32_MIN && v <= INT32_MAX;
    case F::TYPE_UINT32: case F::TYPE_FIXED32:
      return v >= 0 && v <= UINT32_MAX;
    case F::TYPE_UINT64: case F::TYPE_FIXED64:
      return v >= 0 && v <= static_cast<__int128>(UINT64_MAX);
    default:
      return v >= INT64_MIN && v <= INT64_MAX;
  }
}

// Walks one row: compares every Arrow value with the parsed message (when `msg` is set) and
// records whether the type mapping says the row must fail.
class RowReference {
 public:
  bool must_fail = false;
  std::vector<std::string> mismatches;

  void Message(const std::vector<std::shared_ptr<arrow::Scalar>>& values,
               const std::vector<std::string>& names, const pb::Descriptor& d,
               const pb::Message* msg, const std::string& prefix) {
    for (size_t c = 0; c < values.size(); ++c) {
      const pb::FieldDescriptor* fd = d.FindFieldByName(names[c]);
      if (fd == nullptr) {
        Mismatch(prefix + names[c], "no field");
        continue;
      }
      Field(values[c], *fd, msg, prefix + names[c]);
    }
  }

 private:
  void Mismatch(const std::string& path, const std::string& what) {
    mismatches.push_back(path + ": " + what);
  }

  void Field(std::shared_ptr<arrow::Scalar> s, const pb::FieldDescriptor& fd,
             const pb::Message* msg, const std::string& path) {
    s = Decode(std::move(s));
    const pb::Reflection* r = msg ? msg->GetReflection() : nullptr;
    if (fd.is_repeated()) {
      const int n = msg ? r->FieldSize(*msg, &fd) : 0;
      if (!s->is_valid) {
        if (n != 0) Mismatch(path, "null list but " + std::to_string(n) + " values");
        return;
      }
      std::shared_ptr<arrow::Array> items = static_cast<const arrow::BaseListScalar&>(*s).value;
      if (msg && n != items->length()) {
        Mismatch(path, "expected " + std::to_string(items->length()) + " values, got " +
                           std::to_string(n));
        return;
      }
      const bool map = s->type->id() == arrow::Type::MAP;
      for (int64_t j = 0; j < items->length(); ++j) {
        Value(items->GetScalar(j).ValueOrDie(), fd, msg, static_cast<int>(j), path, true, map);
      }
      return;
    }
    Value(s, fd, msg, -1, path, false, false);
  }

  // index >= 0: element `index` of a repeated field.
  void Value(std::shared_ptr<arrow::Scalar> s, const pb::FieldDescriptor& fd,
             const pb::Message* msg, int index, const std::string& path, bool element,
             bool map_entry) {
    using F = pb::FieldDescriptor;
    s = Decode(std::move(s));
    const pb::Reflection* r = msg ? msg->GetReflection() : nullptr;
    if (!s->is_valid) {
      if (element || fd.is_required()) must_fail = true;
      else if (msg && r->HasField(*msg, &fd)) Mismatch(path, "null but field is set");
      return;
    }
    if (msg && index < 0 && !r->HasField(*msg, &fd)) {
      Mismatch(path, "value " + s->ToString() + " but field unset");
      msg = nullptr;  // keep walking for failures only
    }
    if (fd.type() == F::TYPE_MESSAGE) {
      const pb::Message* sub = nullptr;
      if (msg) sub = index < 0 ? &r->GetMessage(*msg, &fd) : &r->GetRepeatedMessage(*msg, &fd, index);
      const auto& st = static_cast<const arrow::StructScalar&>(*s);
      std::vector<std::string> names;
      for (const auto& f : st.type->fields()) names.push_back(f->name());
      if (map_entry) names = {"key", "value"};
      Message(st.value, names, *fd.message_type(), sub, path + ".");
      return;
    }
    const auto id = s->type->id();
    if (fd.cpp_type() == F::CPPTYPE_STRING) {
      std::string expected;
      if (arrow::is_decimal(id)) {
        const int32_t scale = static_cast<const arrow::DecimalType&>(*s->type).scale();
        std::string integer;
        switch (id) {
          case arrow::Type::DECIMAL32:
            integer = static_cast<const arrow::Decimal32Scalar&>(*s).value.ToIntegerString(); break;
          case arrow::Type::DECIMAL64:
            integer = static_cast<const arrow::Decimal64Scalar&>(*s).value.ToIntegerString(); break;
          case arrow::Type::DECIMAL128:
            integer = static_cast<const arrow::Decimal128Scalar&>(*s).value.ToIntegerString(); break;
          default:
            integer = static_cast<const arrow::Decimal256Scalar&>(*s).value.ToIntegerString(); break;
        }
        expected = DecimalText(integer, scale);
      } else {
        expected = static_cast<const arrow::BaseBinaryScalar&>(*s).view();
      }
      if (msg) {
        std::string got = index < 0 ? r->GetString(*msg, &fd) : r->GetRepeatedString(*msg, &fd, index);
        if (got != expected) Mismatch(path, "expected '" + expected + "', got '" + got + "'");
      }
      return;
    }
    if (fd.cpp_type() == F::CPPTYPE_BOOL) {
      const bool expected = static_cast<const arrow::BooleanScalar&>(*s).value;
      if (msg) {
        const bool got = index < 0 ? r->GetBool(*msg, &fd) : r->GetRepeatedBool(*msg, &fd, index);
        if (got != expected) Mismatch(path, "bool differs");
      }
      return;
    }
    if (fd.cpp_type() == F::CPPTYPE_FLOAT || fd.cpp_type() == F::CPPTYPE_DOUBLE) {
      double expected;
      if (id == arrow::Type::HALF_FLOAT) {
        expected = arrow::util::Float16::FromBits(
                       static_cast<const arrow::HalfFloatScalar&>(*s).value).ToFloat();
      } else if (id == arrow::Type::FLOAT) {
        expected = static_cast<const arrow::FloatScalar&>(*s).value;
      } else {
        expected = static_cast<const arrow::DoubleScalar&>(*s).value;
      }
      if (fd.cpp_type() == F::CPPTYPE_FLOAT) expected = static_cast<float>(expected);
      if (msg) {
        double got = fd.cpp_type() == F::CPPTYPE_FLOAT
                         ? (index < 0 ? r->GetFloat(*msg, &fd) : r->GetRepeatedFloat(*msg, &fd, index))
                         : (index < 0 ? r->GetDouble(*msg, &fd) : r->GetRepeatedDouble(*msg, &fd, index));
        const bool same = (std::isnan(got) && std::isnan(expected)) || got == expected;
        if (!same) Mismatch(path, "expected " + std::to_string(expected) + ", got " + std::to_string(got));
      }
      return;
    }
    if (fd.type() == F::TYPE_ENUM &&
        (arrow::is_base_binary_like(id) || id == arrow::Type::STRING_VIEW)) {
      const std::string name(static_cast<const arrow::BaseBinaryScalar&>(*s).view());
      const pb::EnumValueDescriptor* v = fd.enum_type()->FindValueByName(name);
      if (v == nullptr) {
        must_fail = true;
        return;
      }
      if (msg) {
        const int got = index < 0 ? r->GetEnumValue(*msg, &fd) : r->GetRepeatedEnumValue(*msg, &fd, index);
        if (got != v->number()) Mismatch(path, "enum differs");
      }
      return;
    }
    // Integers (and enums by number).
    std::optional<__int128> v = IntegerValue(*s);
    if (!v.has_value() || !InRange(*v, fd.type())) {
      must_fail = true;
      return;
    }
    if (fd.type() == F::TYPE_ENUM && fd.enum_type()->FindValueByNumber(static_cast<int>(*v)) == nullptr) {
      must_fail = true;
      return;
    }
    if (!msg) return;
    __int128 got = 0;
    switch (fd.cpp_type()) {
      case F::CPPTYPE_INT32: got = index < 0 ? r->GetInt32(*msg, &fd) : r->GetRepeatedInt32(*msg, &fd, index); break;
      case F::CPPTYPE_INT64: got = index < 0 ? r->GetInt64(*msg, &fd) : r->GetRepeatedInt64(*msg, &fd, index); break;
      case F::CPPTYPE_UINT32: got = index < 0 ? r->GetUInt32(*msg, &fd) : r->GetRepeatedUInt32(*msg, &fd, index); break;
      case F::CPPTYPE_UINT64: got = index < 0 ? r->GetUInt64(*msg, &fd) : r->GetRepeatedUInt64(*msg, &fd, index); break;
      case F::CPPTYPE_ENUM: got = index < 0 ? r->GetEnumValue(*msg, &fd) : r->GetRepeatedEnumValue(*msg, &fd, index); break;
      default: Mismatch(path, "unexpected field type"); return;
    }
    if (got != *v) {
      Mismatch(path, "expected " + std::to_string(static_cast<long long>(*v)) + ", got " +
                         std::to_string(static_cast<long long>(got)));
    }
  }
};

// Encodes `batch`, parses every record and checks it (and the set of failed rows) against the
// reference. Returns the encoded batch for further checks.
inline EncodedBatch EncodeAndVerify(const RecordBatchEncoder& encoder, const arrow::RecordBatch& batch) {
  auto result = encoder.Encode(batch);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return {};
  EncodedBatch encoded = std::move(*result);
  ProtoSchema proto(encoder.descriptor());
  std::vector<std::string> names;
  for (const auto& f : batch.schema()->fields()) names.push_back(f->name());

  std::map<int64_t, std::string> failed;
  for (const auto& e : encoded.failed_rows) failed[e.row] = e.message;
  EXPECT_EQ(failed.size(), encoded.failed_rows.size()) << "a row failed twice";
  for (size_t i = 1; i < encoded.failed_rows.size(); ++i) {
    EXPECT_LT(encoded.failed_rows[i - 1].row, encoded.failed_rows[i].row) << "failed_rows unsorted";
  }
  EXPECT_EQ(encoded.num_records() + static_cast<int64_t>(failed.size()), batch.num_rows());

  int64_t record = 0;
  for (int64_t row = 0; row < batch.num_rows(); ++row) {
    std::vector<std::shared_ptr<arrow::Scalar>> values;
    for (int c = 0; c < batch.num_columns(); ++c) {
      values.push_back(batch.column(c)->GetScalar(row).ValueOrDie());
    }
    RowReference ref;
    if (failed.count(row)) {
      ref.Message(values, names, *proto.descriptor(), nullptr, "");
      EXPECT_TRUE(ref.must_fail) << "row " << row << " failed unexpectedly: " << failed[row];
      continue;
    }
    if (record >= encoded.num_records()) {
      ADD_FAILURE() << "missing record for row " << row;
      break;
    }
    EXPECT_EQ(encoded.source_rows[record], row);
    auto msg = proto.Parse(encoded.record(record));
    ++record;
    if (msg == nullptr) {
      ADD_FAILURE() << "row " << row << " does not parse";
      continue;
    }
    ref.Message(values, names, *proto.descriptor(), msg.get(), "");
    EXPECT_FALSE(ref.must_fail) << "row " << row << " should have failed";
    for (const auto& m : ref.mismatches) ADD_FAILURE() << "row " << row << ": " << m;
  }
  return encoded;
}

}  // namespace arrow_zerobus::testing
