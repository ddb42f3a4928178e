// Integer-like columns (integers, dates, timestamps) into every integer proto type and enums.
#include <algorithm>
#include <limits>
#include <string>

#include <arrow/type.h>

#include "arrow_zerobus/errors.h"
#include "encode/scalar_writer_internal.h"

namespace arrow_zerobus::encode_internal {

namespace {

using int128 = __int128;

// How a stored integer becomes the value written: as is, times a factor (timestamps in s/ms to
// microseconds, overflow fails the row), or floor-divided (ns to us, date64 ms to days).
enum class Xform { kNone, kMul, kFloorDiv };
enum class Wire { kVarint, kZigZag, kFixed32, kFixed64 };

struct IntParams {
  int64_t factor = 1;
  int128 lo = 0;  // accepted range of the (transformed) value
  int128 hi = 0;
  // TYPE_ENUM written by number: the defined numbers, sorted (proto2 enums are closed).
  std::shared_ptr<const EnumBinding> enum_values;
  std::string source;  // Arrow type, for messages ("timestamp[s]")
  std::string target;  // proto type, for messages ("int32")
};

std::string Int128ToString(int128 v) {
  if (v < 0) return std::to_string(static_cast<int64_t>(v));
  return std::to_string(static_cast<uint64_t>(v));
}

template <typename CType, Xform kX, Wire kW, bool kCheck>
struct IntCell {
  using Params = IntParams;
  static constexpr bool kCanFail = kCheck || kX == Xform::kMul;
  static constexpr int64_t kFixedSize =
      kW == Wire::kFixed32 ? 4 : (kW == Wire::kFixed64 ? 8 : 0);

  IntCell(const arrow::ArrayData& data, const Params& params)
      : values(data.GetValues<CType>(1, 0)), params(&params), factor(params.factor) {}

  // The transformed value; wraps on overflow (Ok() is false then).
  int128 Value(int64_t i) const {
    const CType raw = values[i];
    if constexpr (kX == Xform::kNone) {
      return static_cast<int128>(raw);
    } else if constexpr (kX == Xform::kMul) {
      int64_t out;
      __builtin_mul_overflow(static_cast<int64_t>(raw), factor, &out);
      return out;
    } else {
      const int64_t x = static_cast<int64_t>(raw);
      int64_t q = x / factor;
      if ((x % factor != 0) && (x < 0)) --q;  // floor, not truncation
      return q;
    }
  }

  bool Overflows(int64_t i) const {
    if constexpr (kX == Xform::kMul) {
      int64_t out;
      return __builtin_mul_overflow(static_cast<int64_t>(values[i]), factor, &out);
    }
    return false;
  }

  bool InRange(int128 v) const {
    if (v < params->lo || v > params->hi) return false;
    if (params->enum_values != nullptr) {
      const auto& numbers = params->enum_values->numbers;
      return std::binary_search(numbers.begin(), numbers.end(), static_cast<int32_t>(v));
    }
    return true;
  }

  bool Ok(int64_t i) const {
    if (Overflows(i)) return false;
    if constexpr (kCheck) return InRange(Value(i));
    return true;
  }

  std::string Reason(int64_t i) const {
    if (Overflows(i)) {
      return "value " + Int128ToString(static_cast<int128>(values[i])) + " (" + params->source +
             ") overflows int64 microseconds";
    }
    const int128 v = Value(i);
    if (params->enum_values != nullptr && v >= params->lo && v <= params->hi) {
      return "value " + Int128ToString(v) + " is not a number of the field's enum";
    }
    return "value " + Int128ToString(v) + " out of range for " + params->target;
  }

  int64_t Size(int64_t i) const {
    const int128 v = Value(i);
    if constexpr (kW == Wire::kVarint) {
      return VarintSize(static_cast<uint64_t>(v));
    } else if constexpr (kW == Wire::kZigZag) {
      return VarintSize(ZigZag64(static_cast<int64_t>(static_cast<uint64_t>(v))));
    } else if constexpr (kW == Wire::kFixed32) {
      return 4;
    } else {
      return 8;
    }
  }

  uint8_t* Write(int64_t i, uint8_t* out) const {
    const int128 v = Value(i);
    if constexpr (kW == Wire::kVarint) {
      return WriteVarint(out, static_cast<uint64_t>(v));
    } else if constexpr (kW == Wire::kZigZag) {
      return WriteVarint(out, ZigZag64(static_cast<int64_t>(static_cast<uint64_t>(v))));
    } else if constexpr (kW == Wire::kFixed32) {
      return WriteFixed32(out, static_cast<uint32_t>(static_cast<uint64_t>(v)));
    } else {
      return WriteFixed64(out, static_cast<uint64_t>(v));
    }
  }

  const CType* values;
  const Params* params;
  int64_t factor;
};

template <typename CType, Xform kX, Wire kW>
std::unique_ptr<FieldPlan> PlanWire(FieldInfo info, IntParams params, bool check) {
  if (check) return MakeScalarPlan<IntCell<CType, kX, kW, true>>(std::move(info), std::move(params));
  return MakeScalarPlan<IntCell<CType, kX, kW, false>>(std::move(info), std::move(params));
}

template <typename CType, Xform kX>
std::unique_ptr<FieldPlan> PlanSource(FieldInfo info, IntParams params, Wire wire, bool check) {
  switch (wire) {
    case Wire::kVarint:
      return PlanWire<CType, kX, Wire::kVarint>(std::move(info), std::move(params), check);
    case Wire::kZigZag:
      return PlanWire<CType, kX, Wire::kZigZag>(std::move(info), std::move(params), check);
    case Wire::kFixed32:
      return PlanWire<CType, kX, Wire::kFixed32>(std::move(info), std::move(params), check);
    case Wire::kFixed64:
      return PlanWire<CType, kX, Wire::kFixed64>(std::move(info), std::move(params), check);
  }
  return nullptr;
}

template <typename CType>
void SourceRange(int128* lo, int128* hi) {
  *lo = std::numeric_limits<CType>::min();
  *hi = std::numeric_limits<CType>::max();
}

}  // namespace

arrow::Result<std::unique_ptr<FieldPlan>> PlanInteger(const FieldBinding& binding,
                                                      const std::shared_ptr<arrow::DataType>& type,
                                                      FieldInfo info) {
  using T = FieldDescriptorProto;
  IntParams params;
  params.source = type->ToString();
  params.target = ProtoTypeName(binding.type);
  Wire wire = Wire::kVarint;
  constexpr int128 kI32Min = std::numeric_limits<int32_t>::min();
  constexpr int128 kI32Max = std::numeric_limits<int32_t>::max();
  constexpr int128 kI64Min = std::numeric_limits<int64_t>::min();
  constexpr int128 kI64Max = std::numeric_limits<int64_t>::max();
  constexpr int128 kU32Max = std::numeric_limits<uint32_t>::max();
  constexpr int128 kU64Max = std::numeric_limits<uint64_t>::max();
  switch (binding.type) {
    case T::TYPE_INT32:
      params.lo = kI32Min, params.hi = kI32Max;
      break;
    case T::TYPE_INT64:
      params.lo = kI64Min, params.hi = kI64Max;
      break;
    case T::TYPE_UINT32:
      params.lo = 0, params.hi = kU32Max;
      break;
    case T::TYPE_UINT64:
      params.lo = 0, params.hi = kU64Max;
      break;
    case T::TYPE_SINT32:
      params.lo = kI32Min, params.hi = kI32Max, wire = Wire::kZigZag;
      break;
    case T::TYPE_SINT64:
      params.lo = kI64Min, params.hi = kI64Max, wire = Wire::kZigZag;
      break;
    case T::TYPE_FIXED32:
      params.lo = 0, params.hi = kU32Max, wire = Wire::kFixed32;
      break;
    case T::TYPE_SFIXED32:
      params.lo = kI32Min, params.hi = kI32Max, wire = Wire::kFixed32;
      break;
    case T::TYPE_FIXED64:
      params.lo = 0, params.hi = kU64Max, wire = Wire::kFixed64;
      break;
    case T::TYPE_SFIXED64:
      params.lo = kI64Min, params.hi = kI64Max, wire = Wire::kFixed64;
      break;
    case T::TYPE_ENUM:
      if (binding.enum_values == nullptr) {
        return ConversionError("column '" + info.path + "': enum field '" + binding.field_name +
                               "' has no enum values bound");
      }
      params.lo = kI32Min, params.hi = kI32Max;
      params.enum_values = binding.enum_values;
      break;
    default:
      return ConversionError("column '" + info.path + "' (" + type->ToString() +
                             ") cannot be written to a " + params.target + " field");
  }

  int128 src_lo = 0, src_hi = 0;
  auto plan = [&](auto tag, Xform xform) -> std::unique_ptr<FieldPlan> {
    using CType = decltype(tag);
    const bool check = src_lo < params.lo || src_hi > params.hi || params.enum_values != nullptr;
    switch (xform) {
      case Xform::kNone:
        return PlanSource<CType, Xform::kNone>(std::move(info), std::move(params), wire, check);
      case Xform::kMul:
        if constexpr (std::is_same_v<CType, int64_t>) {
          return PlanSource<CType, Xform::kMul>(std::move(info), std::move(params), wire, check);
        }
        break;
      case Xform::kFloorDiv:
        if constexpr (std::is_same_v<CType, int64_t>) {
          return PlanSource<CType, Xform::kFloorDiv>(std::move(info), std::move(params), wire,
                                                     check);
        }
        break;
    }
    return nullptr;
  };
  auto plain = [&](auto tag) {
    SourceRange<decltype(tag)>(&src_lo, &src_hi);
    return plan(tag, Xform::kNone);
  };

  switch (type->id()) {
    case arrow::Type::INT8:
      return plain(int8_t{});
    case arrow::Type::INT16:
      return plain(int16_t{});
    case arrow::Type::INT32:
    case arrow::Type::DATE32:
      return plain(int32_t{});
    case arrow::Type::INT64:
      return plain(int64_t{});
    case arrow::Type::UINT8:
      return plain(uint8_t{});
    case arrow::Type::UINT16:
      return plain(uint16_t{});
    case arrow::Type::UINT32:
      return plain(uint32_t{});
    case arrow::Type::UINT64:
      return plain(uint64_t{});
    case arrow::Type::DATE64: {
      params.factor = 86400000;  // ms per day
      src_lo = kI64Min / params.factor - 1;
      src_hi = kI64Max / params.factor;
      return plan(int64_t{}, Xform::kFloorDiv);
    }
    case arrow::Type::TIMESTAMP: {
      const auto unit = static_cast<const arrow::TimestampType&>(*type).unit();
      switch (unit) {
        case arrow::TimeUnit::SECOND:
        case arrow::TimeUnit::MILLI:
          // Overflow of the multiplication is checked separately; the result is an int64.
          params.factor = unit == arrow::TimeUnit::SECOND ? 1000000 : 1000;
          src_lo = kI64Min, src_hi = kI64Max;
          return plan(int64_t{}, Xform::kMul);
        case arrow::TimeUnit::MICRO:
          src_lo = kI64Min, src_hi = kI64Max;
          return plan(int64_t{}, Xform::kNone);
        case arrow::TimeUnit::NANO:
          params.factor = 1000;
          src_lo = kI64Min / 1000 - 1, src_hi = kI64Max / 1000;
          return plan(int64_t{}, Xform::kFloorDiv);
      }
      break;
    }
    default:
      break;
  }
  return ConversionError("column '" + info.path + "' (" + type->ToString() +
                         ") cannot be written to a " + params.target + " field");
}

}  // namespace arrow_zerobus::encode_internal
