// Random Arrow arrays of every type the encoder supports, with nulls at every level and a
// non-zero offset (a slice) at every level. Deterministic for a seed.
#pragma once

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <arrow/extension/uuid.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/decimal.h>

namespace arrow_zerobus::testing {

class RandomArrays {
 public:
  explicit RandomArrays(uint64_t seed) : rng_(seed) {}

  double null_probability = 0.1;
  // Chance of a null where the type mapping makes it a row failure (list elements, non-nullable
  // columns): small, so most rows encode and some fail.
  double failing_null_probability = 0.01;
  // Chance that an integer / timestamp is drawn from its extremes (may fail its row).
  double extreme_probability = 0.02;
  // Chance that a signed integer is negative.
  double negative_probability = 0.5;
  // Largest magnitude (in bits) of an ordinary integer.
  int max_bits = 40;

  // A sliced array of `length` values. `nullable` = nulls allowed without failing the row.
  std::shared_ptr<arrow::Array> Make(const std::shared_ptr<arrow::DataType>& type, int64_t length,
                                     bool nullable = true) {
    const int64_t front = Uniform(0, 3);
    const int64_t back = Uniform(0, 2);
    auto full = MakeUnsliced(type, front + length + back, nullable);
    return full->Slice(front, length);
  }

  int64_t Uniform(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

 private:
  std::shared_ptr<arrow::Buffer> Validity(int64_t n, bool nullable, int64_t* null_count) {
    const double p = nullable ? null_probability : failing_null_probability;
    auto buffer = arrow::AllocateEmptyBitmap(n).ValueOrDie();
    *null_count = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (Chance(p)) {
        ++*null_count;
      } else {
        arrow::bit_util::SetBit(buffer->mutable_data(), i);
      }
    }
    return buffer;
  }

  template <typename T>
  T RandomInt() {
    if (Chance(extreme_probability)) {
      const int64_t pick = Uniform(0, 3);
      if (pick == 0) return std::numeric_limits<T>::min();
      if (pick == 1) return std::numeric_limits<T>::max();
      return static_cast<T>(rng_());
    }
    // Mostly small magnitudes, both signs for signed types, varied varint lengths.
    const int bits = static_cast<int>(Uniform(0, std::min<int>(sizeof(T) * 8 - 1, max_bits)));
    uint64_t magnitude = bits == 0 ? 0 : (rng_() >> (64 - bits));
    T v = static_cast<T>(magnitude);
    if constexpr (std::is_signed_v<T>) {
      if (Chance(negative_probability)) v = static_cast<T>(-v);
    }
    return v;
  }

  template <typename T>
  std::shared_ptr<arrow::Array> Fixed(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                      bool nullable, T (RandomArrays::*draw)()) {
    int64_t nulls;
    auto validity = Validity(n, nullable, &nulls);
    auto values = arrow::AllocateBuffer(n * sizeof(T)).ValueOrDie();
    T* out = reinterpret_cast<T*>(values->mutable_data());
    for (int64_t i = 0; i < n; ++i) out[i] = (this->*draw)();
    return arrow::MakeArray(arrow::ArrayData::Make(
        type, n, {std::move(validity), std::shared_ptr<arrow::Buffer>(std::move(values))}, nulls));
  }

  double RandomDouble() {
    const int64_t pick = Uniform(0, 20);
    if (pick == 0) return std::numeric_limits<double>::quiet_NaN();
    if (pick == 1) return -0.0;
    if (pick == 2) return std::numeric_limits<double>::infinity();
    return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
  }
  float RandomFloat() { return static_cast<float>(RandomDouble()); }
  uint16_t RandomHalf() { return static_cast<uint16_t>(rng_()); }
  int64_t RandomSeconds() {
    if (Chance(extreme_probability)) return Chance(0.5) ? INT64_MAX / 1000 : -(INT64_MAX / 100);
    return Uniform(-4000000000LL, 4000000000LL);
  }
  int64_t RandomMillis() {
    if (Chance(extreme_probability)) return Chance(0.5) ? INT64_MAX / 10 : INT64_MIN / 999;
    return Uniform(-4000000000000LL, 4000000000000LL);
  }
  // Arrow wants whole days; other producers may not check, and the mapping floors them.
  int64_t RandomDate64() {
    return Chance(0.5) ? Uniform(-100000, 100000) * 86400000 : RandomMillis();
  }
  int64_t RandomWide() { return static_cast<int64_t>(rng_()); }
  int32_t RandomDays() { return static_cast<int32_t>(Uniform(-1000000, 1000000)); }

  std::string RandomBytes(int64_t max_len, bool text) {
    const int64_t len = Uniform(0, max_len);
    std::string s(static_cast<size_t>(len), ' ');
    for (auto& c : s) c = text ? static_cast<char>('a' + Uniform(0, 25)) : static_cast<char>(rng_());
    return s;
  }

  template <class Builder>
  std::shared_ptr<arrow::Array> Strings(Builder&& builder, int64_t n, bool nullable, int64_t max_len,
                                        bool text) {
    const double p = nullable ? null_probability : failing_null_probability;
    for (int64_t i = 0; i < n; ++i) {
      if (Chance(p)) {
        (void)builder.AppendNull();
      } else {
        (void)builder.Append(RandomBytes(max_len, text));
      }
    }
    return builder.Finish().ValueOrDie();
  }

  std::string RandomDigits(int precision) {
    std::string s = Chance(0.5) ? "-" : "";
    const int64_t digits = Uniform(1, precision);
    for (int64_t i = 0; i < digits; ++i) s += static_cast<char>('0' + Uniform(i == 0 ? 1 : 0, 9));
    if (Chance(0.05)) s = "0";
    return s;
  }

  std::shared_ptr<arrow::Array> Decimals(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                         bool nullable) {
    std::unique_ptr<arrow::ArrayBuilder> builder = arrow::MakeBuilder(type).ValueOrDie();
    const int precision = static_cast<const arrow::DecimalType&>(*type).precision();
    const double p = nullable ? null_probability : failing_null_probability;
    for (int64_t i = 0; i < n; ++i) {
      if (Chance(p)) {
        (void)builder->AppendNull();
        continue;
      }
      const std::string digits = RandomDigits(precision);
      switch (type->id()) {
        case arrow::Type::DECIMAL32:
          (void)static_cast<arrow::Decimal32Builder&>(*builder).Append(arrow::Decimal32::FromString(digits).ValueOrDie());
          break;
        case arrow::Type::DECIMAL64:
          (void)static_cast<arrow::Decimal64Builder&>(*builder).Append(arrow::Decimal64::FromString(digits).ValueOrDie());
          break;
        case arrow::Type::DECIMAL128:
          (void)static_cast<arrow::Decimal128Builder&>(*builder).Append(arrow::Decimal128::FromString(digits).ValueOrDie());
          break;
        default:
          (void)static_cast<arrow::Decimal256Builder&>(*builder).Append(arrow::Decimal256::FromString(digits).ValueOrDie());
          break;
      }
    }
    return builder->Finish().ValueOrDie();
  }

  template <typename O>
  std::shared_ptr<arrow::Buffer> Offsets(int64_t n, int64_t max_len, int64_t* total) {
    auto buffer = arrow::AllocateBuffer((n + 1) * sizeof(O)).ValueOrDie();
    O* out = reinterpret_cast<O*>(buffer->mutable_data());
    out[0] = 0;
    for (int64_t i = 0; i < n; ++i) out[i + 1] = static_cast<O>(out[i] + Uniform(0, max_len));
    *total = out[n];
    return std::shared_ptr<arrow::Buffer>(std::move(buffer));
  }

  template <typename O>
  std::shared_ptr<arrow::Array> ListView(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                         bool nullable) {
    const int64_t child_len = Uniform(0, 3 * n + 4);
    auto child = Make(type->field(0)->type(), child_len, false);  // element nulls fail the row
    auto offsets = arrow::AllocateBuffer(n * sizeof(O)).ValueOrDie();
    auto sizes = arrow::AllocateBuffer(n * sizeof(O)).ValueOrDie();
    O* off = reinterpret_cast<O*>(offsets->mutable_data());
    O* size = reinterpret_cast<O*>(sizes->mutable_data());
    for (int64_t i = 0; i < n; ++i) {
      // Views may overlap and come in any order.
      off[i] = static_cast<O>(child_len == 0 ? 0 : Uniform(0, child_len - 1));
      size[i] = static_cast<O>(child_len == 0 ? 0 : Uniform(0, std::min<int64_t>(4, child_len - off[i])));
    }
    int64_t nulls;
    auto validity = Validity(n, true, &nulls);
    return arrow::MakeArray(arrow::ArrayData::Make(
        type, n,
        {validity, std::shared_ptr<arrow::Buffer>(std::move(offsets)),
         std::shared_ptr<arrow::Buffer>(std::move(sizes))},
        {child->data()}, nulls));
  }

  std::shared_ptr<arrow::Array> MapArray(const std::shared_ptr<arrow::DataType>& type, int64_t n) {
    const auto& map = static_cast<const arrow::MapType&>(*type);
    int64_t total;
    auto offsets = Offsets<int32_t>(n, 3, &total);
    // Keys unique within each map (a parser keeps only the last of equal keys).
    std::shared_ptr<arrow::Array> keys;
    if (map.key_type()->id() == arrow::Type::STRING) {
      arrow::StringBuilder b;
      for (int64_t i = 0; i < total; ++i) (void)b.Append("k" + std::to_string(i) + RandomBytes(3, true));
      keys = b.Finish().ValueOrDie();
    } else {
      arrow::Int32Builder b;
      for (int64_t i = 0; i < total; ++i) (void)b.Append(static_cast<int32_t>(i * 3 - 7));
      keys = b.Finish().ValueOrDie();
    }
    auto values = Make(map.item_type(), total, true);
    auto entries = arrow::StructArray::Make({keys, values}, {map.key_field(), map.item_field()}).ValueOrDie();
    int64_t nulls;
    auto validity = Validity(n, true, &nulls);
    return arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity, offsets}, {entries->data()}, nulls));
  }

  template <class Builder>
  std::shared_ptr<arrow::Array> JsonTexts(Builder&& b, int64_t n, bool nullable) {
    for (int64_t i = 0; i < n; ++i) {
      if (Chance(nullable ? null_probability : failing_null_probability)) {
        (void)b.AppendNull();
      } else {
        (void)b.Append("{\"v\": " + std::to_string(Uniform(-100, 100)) + "}");
      }
    }
    return b.Finish().ValueOrDie();
  }

  template <class Builder>
  std::shared_ptr<arrow::Array> Indices(Builder&& b, int64_t n, int64_t size, double p) {
    using C = typename std::decay_t<Builder>::value_type;
    for (int64_t i = 0; i < n; ++i) {
      if (Chance(p)) {
        (void)b.AppendNull();
      } else {
        (void)b.Append(static_cast<C>(Uniform(0, size - 1)));
      }
    }
    return b.Finish().ValueOrDie();
  }

  std::shared_ptr<arrow::Array> RunEnd(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                       bool nullable) {
    const auto& ree = static_cast<const arrow::RunEndEncodedType&>(*type);
    std::vector<int64_t> ends;
    for (int64_t at = 0; at < n;) {
      at = std::min(n, at + Uniform(1, 4));
      ends.push_back(at);
    }
    std::shared_ptr<arrow::Array> run_ends;
    switch (ree.run_end_type()->id()) {
      case arrow::Type::INT16: {
        arrow::Int16Builder b;
        for (auto e : ends) (void)b.Append(static_cast<int16_t>(e));
        run_ends = b.Finish().ValueOrDie();
        break;
      }
      case arrow::Type::INT32: {
        arrow::Int32Builder b;
        for (auto e : ends) (void)b.Append(static_cast<int32_t>(e));
        run_ends = b.Finish().ValueOrDie();
        break;
      }
      default: {
        arrow::Int64Builder b;
        for (auto e : ends) (void)b.Append(e);
        run_ends = b.Finish().ValueOrDie();
      }
    }
    auto values = Make(ree.value_type(), static_cast<int64_t>(ends.size()), nullable);
    return arrow::RunEndEncodedArray::Make(n, run_ends, values).ValueOrDie();
  }

  std::shared_ptr<arrow::Array> MakeUnsliced(const std::shared_ptr<arrow::DataType>& type,
                                             int64_t n, bool nullable) {
    using T = arrow::Type;
    switch (type->id()) {
      case T::BOOL: {
        int64_t nulls;
        auto validity = Validity(n, nullable, &nulls);
        auto bits = arrow::AllocateEmptyBitmap(n).ValueOrDie();
        for (int64_t i = 0; i < n; ++i) arrow::bit_util::SetBitTo(bits->mutable_data(), i, Chance(0.5));
        return arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity, bits}, nulls));
      }
      case T::INT8: return Fixed<int8_t>(type, n, nullable, &RandomArrays::RandomInt<int8_t>);
      case T::INT16: return Fixed<int16_t>(type, n, nullable, &RandomArrays::RandomInt<int16_t>);
      case T::INT32: return Fixed<int32_t>(type, n, nullable, &RandomArrays::RandomInt<int32_t>);
      case T::INT64: return Fixed<int64_t>(type, n, nullable, &RandomArrays::RandomInt<int64_t>);
      case T::UINT8: return Fixed<uint8_t>(type, n, nullable, &RandomArrays::RandomInt<uint8_t>);
      case T::UINT16: return Fixed<uint16_t>(type, n, nullable, &RandomArrays::RandomInt<uint16_t>);
      case T::UINT32: return Fixed<uint32_t>(type, n, nullable, &RandomArrays::RandomInt<uint32_t>);
      case T::UINT64: return Fixed<uint64_t>(type, n, nullable, &RandomArrays::RandomInt<uint64_t>);
      case T::HALF_FLOAT: return Fixed<uint16_t>(type, n, nullable, &RandomArrays::RandomHalf);
      case T::FLOAT: return Fixed<float>(type, n, nullable, &RandomArrays::RandomFloat);
      case T::DOUBLE: return Fixed<double>(type, n, nullable, &RandomArrays::RandomDouble);
      case T::DATE32: return Fixed<int32_t>(type, n, nullable, &RandomArrays::RandomDays);
      case T::DATE64: return Fixed<int64_t>(type, n, nullable, &RandomArrays::RandomDate64);
      case T::TIMESTAMP: {
        const auto unit = static_cast<const arrow::TimestampType&>(*type).unit();
        if (unit == arrow::TimeUnit::SECOND) return Fixed<int64_t>(type, n, nullable, &RandomArrays::RandomSeconds);
        if (unit == arrow::TimeUnit::MILLI) return Fixed<int64_t>(type, n, nullable, &RandomArrays::RandomMillis);
        return Fixed<int64_t>(type, n, nullable, &RandomArrays::RandomWide);
      }
      case T::STRING: return Strings(arrow::StringBuilder(), n, nullable, 20, true);
      case T::LARGE_STRING: return Strings(arrow::LargeStringBuilder(), n, nullable, 20, true);
      case T::STRING_VIEW: return Strings(arrow::StringViewBuilder(), n, nullable, 30, true);
      case T::BINARY: return Strings(arrow::BinaryBuilder(), n, nullable, 20, false);
      case T::LARGE_BINARY: return Strings(arrow::LargeBinaryBuilder(), n, nullable, 20, false);
      case T::BINARY_VIEW: return Strings(arrow::BinaryViewBuilder(), n, nullable, 30, false);
      case T::FIXED_SIZE_BINARY: {
        arrow::FixedSizeBinaryBuilder b(type);
        const int width = static_cast<const arrow::FixedSizeBinaryType&>(*type).byte_width();
        for (int64_t i = 0; i < n; ++i) {
          if (Chance(nullable ? null_probability : failing_null_probability)) {
            (void)b.AppendNull();
          } else {
            std::string v(static_cast<size_t>(width), '\0');
            for (auto& c : v) c = static_cast<char>(rng_());
            (void)b.Append(v);
          }
        }
        return b.Finish().ValueOrDie();
      }
      case T::DECIMAL32:
      case T::DECIMAL64:
      case T::DECIMAL128:
      case T::DECIMAL256:
        return Decimals(type, n, nullable);
      case T::STRUCT: {
        std::vector<std::shared_ptr<arrow::Array>> children;
        for (const auto& f : type->fields()) children.push_back(Make(f->type(), n, f->nullable()));
        int64_t nulls;
        auto validity = Validity(n, nullable, &nulls);
        std::vector<std::shared_ptr<arrow::ArrayData>> child_data;
        for (const auto& c : children) child_data.push_back(c->data());
        return arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity}, child_data, nulls));
      }
      case T::LIST:
      case T::LARGE_LIST: {
        int64_t total;
        auto offsets = type->id() == T::LIST ? Offsets<int32_t>(n, 4, &total) : Offsets<int64_t>(n, 4, &total);
        auto child = Make(type->field(0)->type(), total, false);  // element nulls fail the row
        int64_t nulls;
        auto validity = Validity(n, true, &nulls);
        return arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity, offsets}, {child->data()}, nulls));
      }
      case T::LIST_VIEW: return ListView<int32_t>(type, n, nullable);
      case T::LARGE_LIST_VIEW: return ListView<int64_t>(type, n, nullable);
      case T::FIXED_SIZE_LIST: {
        const int32_t width = static_cast<const arrow::FixedSizeListType&>(*type).list_size();
        auto child = Make(type->field(0)->type(), n * width, false);
        int64_t nulls;
        auto validity = Validity(n, true, &nulls);
        return arrow::MakeArray(arrow::ArrayData::Make(type, n, {validity}, {child->data()}, nulls));
      }
      case T::MAP: return MapArray(type, n);
      case T::DICTIONARY: {
        const auto& dict = static_cast<const arrow::DictionaryType&>(*type);
        const int64_t size = Uniform(1, 6);
        auto dictionary = Make(dict.value_type(), size, nullable);
        const double p = nullable ? null_probability : failing_null_probability;
        std::shared_ptr<arrow::Array> indices;
        switch (dict.index_type()->id()) {
          case T::INT8: indices = Indices(arrow::Int8Builder(), n, size, p); break;
          case T::UINT16: indices = Indices(arrow::UInt16Builder(), n, size, p); break;
          default: indices = Indices(arrow::Int32Builder(), n, size, p); break;
        }
        return arrow::DictionaryArray::FromArrays(type, indices, dictionary).ValueOrDie();
      }
      case T::RUN_END_ENCODED: return RunEnd(type, n, nullable);
      case T::EXTENSION: {
        const auto& ext = static_cast<const arrow::ExtensionType&>(*type);
        std::shared_ptr<arrow::Array> storage;
        if (ext.extension_name() != "arrow.json") {
          storage = MakeUnsliced(ext.storage_type(), n, nullable);
        } else if (ext.storage_type()->id() == T::LARGE_STRING) {
          storage = JsonTexts(arrow::LargeStringBuilder(), n, nullable);
        } else if (ext.storage_type()->id() == T::STRING_VIEW) {
          storage = JsonTexts(arrow::StringViewBuilder(), n, nullable);
        } else {
          storage = JsonTexts(arrow::StringBuilder(), n, nullable);
        }
        return ext.WrapArray(type, storage);
      }
      default:
        throw std::runtime_error("no generator for " + type->ToString());
    }
  }

  std::mt19937_64 rng_;
};

}  // namespace arrow_zerobus::testing
