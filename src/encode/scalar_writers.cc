// Scalar columns other than integers: bool, floating point, string/binary (also enums by name)
// and decimals (as text).
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arrow/type.h>
#include <arrow/type_traits.h>

#include "arrow_zerobus/errors.h"
#include "encode/decimal_text.h"
#include "encode/scalar_writer_internal.h"

namespace arrow_zerobus::encode_internal {

namespace {

struct NoParams {};

struct BoolCell {
  using Params = NoParams;
  static constexpr bool kCanFail = false;
  static constexpr int64_t kFixedSize = 1;
  BoolCell(const arrow::ArrayData& data, const Params&)
      : bits(data.buffers[1] ? data.buffers[1]->data() : nullptr) {}
  int64_t Size(int64_t) const { return 1; }
  uint8_t* Write(int64_t i, uint8_t* out) const {
    *out = arrow::bit_util::GetBit(bits, i) ? 1 : 0;
    return out + 1;
  }
  const uint8_t* bits;
};

// IEEE half -> float; every half value is exactly representable as a float.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24.
    const float magnitude = static_cast<float>(mant) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan, payload kept
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Src: uint16_t (half float), float or double. Dst: float or double.
template <typename Src, typename Dst>
struct FloatCell {
  using Params = NoParams;
  static constexpr bool kCanFail = false;
  static constexpr int64_t kFixedSize = sizeof(Dst);
  FloatCell(const arrow::ArrayData& data, const Params&) : values(data.GetValues<Src>(1, 0)) {}
  int64_t Size(int64_t) const { return sizeof(Dst); }
  uint8_t* Write(int64_t i, uint8_t* out) const {
    Dst v;
    if constexpr (std::is_same_v<Src, uint16_t>) {
      v = static_cast<Dst>(HalfToFloat(values[i]));
    } else {
      v = static_cast<Dst>(values[i]);
    }
    std::memcpy(out, &v, sizeof(Dst));
    return out + sizeof(Dst);
  }
  const Src* values;
};

// Readers of string/binary layouts: Get(i) is the value at physical index i.
template <typename OffsetT>
struct OffsetBinaryReader {
  explicit OffsetBinaryReader(const arrow::ArrayData& data)
      : offsets(data.GetValues<OffsetT>(1, 0)),
        bytes(data.buffers[2] ? data.buffers[2]->data() : nullptr) {}
  std::string_view Get(int64_t i) const {
    const OffsetT begin = offsets[i];
    return {reinterpret_cast<const char*>(bytes) + begin, static_cast<size_t>(offsets[i + 1] - begin)};
  }
  const OffsetT* offsets;
  const uint8_t* bytes;
};

struct ViewBinaryReader {
  explicit ViewBinaryReader(const arrow::ArrayData& data)
      : views(data.GetValues<arrow::BinaryViewType::c_type>(1, 0)) {
    for (size_t b = 2; b < data.buffers.size(); ++b) {
      buffers.push_back(data.buffers[b] ? data.buffers[b]->data() : nullptr);
    }
  }
  std::string_view Get(int64_t i) const {
    const auto& v = views[i];
    const size_t size = static_cast<size_t>(v.size());
    if (v.is_inline()) return {reinterpret_cast<const char*>(v.inlined.data.data()), size};
    return {reinterpret_cast<const char*>(buffers[v.ref.buffer_index]) + v.ref.offset, size};
  }
  const arrow::BinaryViewType::c_type* views;
  std::vector<const uint8_t*> buffers;
};

struct FixedBinaryReader {
  explicit FixedBinaryReader(const arrow::ArrayData& data)
      : bytes(data.buffers[1] ? data.buffers[1]->data() : nullptr),
        width(static_cast<const arrow::FixedSizeBinaryType&>(StorageType(data)).byte_width()) {}
  std::string_view Get(int64_t i) const {
    return {reinterpret_cast<const char*>(bytes) + i * width, static_cast<size_t>(width)};
  }
  const uint8_t* bytes;
  int64_t width;
};

// string / bytes fields: key, length, bytes.
template <class Reader>
struct BytesCell {
  using Params = NoParams;
  static constexpr bool kCanFail = false;
  BytesCell(const arrow::ArrayData& data, const Params&) : reader(data) {}
  int64_t Size(int64_t i) const {
    const int64_t len = static_cast<int64_t>(reader.Get(i).size());
    return VarintSize(static_cast<uint64_t>(len)) + len;
  }
  uint8_t* Write(int64_t i, uint8_t* out) const {
    const std::string_view v = reader.Get(i);
    return CopyBytes(WriteVarint(out, v.size()), v.data(), v.size());
  }
  Reader reader;
};

// Enum fields written from strings: the value's name, looked up in a sorted table.
struct EnumNames {
  std::vector<std::pair<std::string, int32_t>> by_name;  // sorted by name
  int32_t Find(std::string_view name, bool* found) const {
    auto it = std::lower_bound(by_name.begin(), by_name.end(), name,
                               [](const auto& entry, std::string_view n) { return entry.first < n; });
    *found = it != by_name.end() && it->first == name;
    return *found ? it->second : 0;
  }
};

template <class Reader>
struct EnumNameCell {
  using Params = std::shared_ptr<const EnumNames>;
  static constexpr bool kCanFail = true;
  EnumNameCell(const arrow::ArrayData& data, const Params& params)
      : reader(data), names(params.get()) {}
  int32_t Number(int64_t i, bool* found) const { return names->Find(reader.Get(i), found); }
  bool Ok(int64_t i) const {
    bool found;
    Number(i, &found);
    return found;
  }
  std::string Reason(int64_t i) const {
    return "value '" + std::string(reader.Get(i)) + "' is not a name of the field's enum";
  }
  int64_t Size(int64_t i) const {
    bool found;
    return VarintSize(static_cast<uint64_t>(static_cast<int64_t>(Number(i, &found))));
  }
  uint8_t* Write(int64_t i, uint8_t* out) const {
    bool found;
    return WriteVarint(out, static_cast<uint64_t>(static_cast<int64_t>(Number(i, &found))));
  }
  Reader reader;
  const EnumNames* names;
};

// Decimals as exact text; kBytes is the width of one stored value (4, 8, 16 or 32).
template <int kBytes>
struct DecimalCell {
  using Params = int32_t;  // scale
  static constexpr bool kCanFail = false;
  DecimalCell(const arrow::ArrayData& data, const Params& scale)
      : values(data.buffers[1] ? data.buffers[1]->data() : nullptr), scale(scale) {}
  void Digits(int64_t i, DecimalDigits* d) const {
    const uint8_t* p = values + i * kBytes;
    if constexpr (kBytes == 4) {
      int32_t v;
      std::memcpy(&v, p, 4);
      const uint64_t word = static_cast<uint64_t>(static_cast<int64_t>(v));
      DecimalToDigits(&word, 1, d);
    } else {
      uint64_t words[kBytes / 8];
      std::memcpy(words, p, kBytes);
      DecimalToDigits(words, kBytes / 8, d);
    }
  }
  int64_t Size(int64_t i) const {
    DecimalDigits d;
    Digits(i, &d);
    const int64_t len = DecimalTextSize(d, scale);
    return VarintSize(static_cast<uint64_t>(len)) + len;
  }
  uint8_t* Write(int64_t i, uint8_t* out) const {
    DecimalDigits d;
    Digits(i, &d);
    out = WriteVarint(out, static_cast<uint64_t>(DecimalTextSize(d, scale)));
    return WriteDecimalText(d, scale, out);
  }
  const uint8_t* values;
  int32_t scale;
};

template <template <class> class CellT>
std::unique_ptr<FieldPlan> PlanBinaryLayout(arrow::Type::type id, FieldInfo info,
                                            typename CellT<FixedBinaryReader>::Params params) {
  switch (id) {
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return MakeScalarPlan<CellT<OffsetBinaryReader<int32_t>>>(std::move(info), params);
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return MakeScalarPlan<CellT<OffsetBinaryReader<int64_t>>>(std::move(info), params);
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY_VIEW:
      return MakeScalarPlan<CellT<ViewBinaryReader>>(std::move(info), params);
    case arrow::Type::FIXED_SIZE_BINARY:
      return MakeScalarPlan<CellT<FixedBinaryReader>>(std::move(info), params);
    default:
      return nullptr;
  }
}

bool IsStringType(arrow::Type::type id) {
  return id == arrow::Type::STRING || id == arrow::Type::LARGE_STRING ||
         id == arrow::Type::STRING_VIEW;
}

bool IsIntegerLike(arrow::Type::type id) {
  return arrow::is_integer(id) || id == arrow::Type::DATE32 || id == arrow::Type::DATE64 ||
         id == arrow::Type::TIMESTAMP;
}

}  // namespace

arrow::Result<std::unique_ptr<FieldPlan>> PlanScalar(const FieldBinding& binding,
                                                     const std::shared_ptr<arrow::DataType>& type,
                                                     FieldInfo info) {
  using T = FieldDescriptorProto;
  const arrow::Type::type id = type->id();
  std::unique_ptr<FieldPlan> plan;
  switch (binding.type) {
    case T::TYPE_BOOL:
      if (id == arrow::Type::BOOL) plan = MakeScalarPlan<BoolCell>(std::move(info));
      break;
    case T::TYPE_FLOAT:
    case T::TYPE_DOUBLE: {
      const bool to_float = binding.type == T::TYPE_FLOAT;
      if (id == arrow::Type::HALF_FLOAT) {
        plan = to_float ? MakeScalarPlan<FloatCell<uint16_t, float>>(std::move(info))
                        : MakeScalarPlan<FloatCell<uint16_t, double>>(std::move(info));
      } else if (id == arrow::Type::FLOAT) {
        plan = to_float ? MakeScalarPlan<FloatCell<float, float>>(std::move(info))
                        : MakeScalarPlan<FloatCell<float, double>>(std::move(info));
      } else if (id == arrow::Type::DOUBLE) {
        plan = to_float ? MakeScalarPlan<FloatCell<double, float>>(std::move(info))
                        : MakeScalarPlan<FloatCell<double, double>>(std::move(info));
      }
      break;
    }
    case T::TYPE_STRING:
    case T::TYPE_BYTES:
      if (arrow::is_decimal(id)) {
        const int32_t scale = static_cast<const arrow::DecimalType&>(*type).scale();
        switch (id) {
          case arrow::Type::DECIMAL32:
            plan = MakeScalarPlan<DecimalCell<4>>(std::move(info), scale);
            break;
          case arrow::Type::DECIMAL64:
            plan = MakeScalarPlan<DecimalCell<8>>(std::move(info), scale);
            break;
          case arrow::Type::DECIMAL128:
            plan = MakeScalarPlan<DecimalCell<16>>(std::move(info), scale);
            break;
          default:
            plan = MakeScalarPlan<DecimalCell<32>>(std::move(info), scale);
            break;
        }
      } else if (binding.type == T::TYPE_BYTES || IsStringType(id)) {
        // Binary into a string field is refused: protobuf requires valid UTF-8 there.
        plan = PlanBinaryLayout<BytesCell>(id, std::move(info), NoParams{});
      }
      break;
    case T::TYPE_ENUM:
      if (IsStringType(id)) {
        if (binding.enum_values == nullptr) {
          return ConversionError("column '" + info.path + "': enum field '" +
                                 binding.field_name + "' has no enum values bound");
        }
        auto names = std::make_shared<EnumNames>();
        for (const auto& [name, number] : binding.enum_values->number_by_name) {
          names->by_name.emplace_back(name, number);
        }
        std::sort(names->by_name.begin(), names->by_name.end());
        plan = PlanBinaryLayout<EnumNameCell>(id, std::move(info), std::move(names));
      } else if (IsIntegerLike(id)) {
        return PlanInteger(binding, type, std::move(info));
      }
      break;
    case T::TYPE_INT32:
    case T::TYPE_INT64:
    case T::TYPE_UINT32:
    case T::TYPE_UINT64:
    case T::TYPE_SINT32:
    case T::TYPE_SINT64:
    case T::TYPE_FIXED32:
    case T::TYPE_FIXED64:
    case T::TYPE_SFIXED32:
    case T::TYPE_SFIXED64:
      if (IsIntegerLike(id)) return PlanInteger(binding, type, std::move(info));
      break;
    default:
      break;
  }
  if (plan == nullptr) {
    return ConversionError("column '" + binding.column_path + "' (" + type->ToString() +
                           ") cannot be written to field '" + binding.field_name + "' of type " +
                           ProtoTypeName(binding.type));
  }
  return plan;
}

}  // namespace arrow_zerobus::encode_internal
