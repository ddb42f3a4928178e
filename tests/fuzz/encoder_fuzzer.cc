// libFuzzer target: RecordBatchEncoder on random schemas and arrays (clang,
// -fsanitize=fuzzer,address,undefined; built by tests/fuzz/CMakeLists.txt, run by scripts/fuzz.sh).
//
// The fuzz input is the only randomness source (FuzzedDataProvider): it picks a schema of a few
// columns over the supported types (integers, floats, strings/binaries and their large/view
// forms, dates, timestamps, decimals, JSON/UUID extensions, list/large/view/fixed-size lists,
// structs, maps, dictionaries, run-end encoding, nested a few levels), arrays with nulls and a
// slice offset at every level, sometimes a small request limit, and sometimes retargets scalar
// fields of the generated descriptor (the bound-descriptor path). Findings (abort):
//  - a crash or sanitizer report in the encoder or the schema code;
//  - Encode failing as a whole for a batch of the encoder's own schema;
//  - a broken EncodedBatch: offsets, framing, source/failed rows, chunks over the request limit;
//  - a descriptor libprotobuf will not build, or a record its DynamicMessage cannot parse
//    (required fields included);
//  - for batches that pass arrow ValidateFull: a value that differs from the Arrow source, or a
//    failed row the type mapping does not explain (the independent reference of
//    tests/encode/encode_test_util.h). Arrays that only pass Validate (invalid UTF-8, decimals
//    beyond their precision, date64 not on whole days) get the structural and parse checks.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <arrow/extension/json.h>
#include <arrow/extension/uuid.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/stubs/logging.h>

#include "arrow_zerobus/encode.h"
#include "common/proto_wire.h"
#include "encode/encode_test_util.h"  // ProtoSchema, RowReference (header-only; no gtest link)

namespace {

using arrow_zerobus::EncodedBatch;
using arrow_zerobus::EncodeOptions;
using arrow_zerobus::RecordBatchEncoder;
using arrow_zerobus::RecordRange;
namespace pb = google::protobuf;

const arrow::RecordBatch* g_batch = nullptr;  // printed when a finding aborts

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "encoder fuzz finding: %s\n", what.c_str());
  if (g_batch != nullptr) {
    std::fprintf(stderr, "schema:\n%s\n", g_batch->schema()->ToString().c_str());
    const std::string text = g_batch->ToString();
    std::fprintf(stderr, "batch (%lld rows):\n%.20000s\n", static_cast<long long>(g_batch->num_rows()),
                 text.c_str());
  }
  std::abort();
}

std::shared_ptr<arrow::Buffer> BufferOf(std::vector<uint8_t> bytes) {
  // Exactly sized heap blocks (not Arrow's padded allocations): ASan sees any read past them.
  // Never a null data pointer, as Arrow's own buffers never have one.
  if (bytes.empty()) bytes.reserve(1);
  return arrow::Buffer::FromVector(std::move(bytes));
}

// Random types and arrays; every decision is drawn from the fuzz input.
class Generator {
 public:
  explicit Generator(FuzzedDataProvider* in) : in_(*in) {}

  std::string Name(int index, const char* prefix) {
    // Mostly valid proto names; sometimes names the mapping must refuse or deduplicate.
    static const char* kOdd[] = {"", "1st", "a b", "\xc3\xa9t\xc3\xa9", "x", "key", "value", "_"};
    if (in_.ConsumeIntegralInRange<int>(0, 15) == 0) return kOdd[in_.ConsumeIntegralInRange<int>(0, 7)];
    return std::string(prefix) + std::to_string(index);
  }

  std::shared_ptr<arrow::DataType> Leaf() {
    switch (in_.ConsumeIntegralInRange<int>(0, 27)) {
      case 0: return arrow::boolean();
      case 1: return arrow::int8();
      case 2: return arrow::int16();
      case 3: return arrow::int32();
      case 4: return arrow::int64();
      case 5: return arrow::uint8();
      case 6: return arrow::uint16();
      case 7: return arrow::uint32();
      case 8: return arrow::uint64();
      case 9: return arrow::float16();
      case 10: return arrow::float32();
      case 11: return arrow::float64();
      case 12: return arrow::utf8();
      case 13: return arrow::large_utf8();
      case 14: return arrow::utf8_view();
      case 15: return arrow::binary();
      case 16: return arrow::large_binary();
      case 17: return arrow::binary_view();
      case 18: return arrow::fixed_size_binary(in_.ConsumeIntegralInRange<int>(1, 9));
      case 19: return arrow::date32();
      case 20: return arrow::date64();
      case 21: {
        static const arrow::TimeUnit::type kUnits[] = {arrow::TimeUnit::SECOND, arrow::TimeUnit::MILLI,
                                                       arrow::TimeUnit::MICRO, arrow::TimeUnit::NANO};
        const auto unit = kUnits[in_.ConsumeIntegralInRange<int>(0, 3)];
        return in_.ConsumeBool() ? arrow::timestamp(unit) : arrow::timestamp(unit, "UTC");
      }
      case 22: return Decimal(arrow::Type::DECIMAL32, 9);
      case 23: return Decimal(arrow::Type::DECIMAL64, 18);
      case 24: return Decimal(arrow::Type::DECIMAL128, 38);
      case 25: return Decimal(arrow::Type::DECIMAL256, 76);
      case 26: {
        static const std::shared_ptr<arrow::DataType> kStorage[] = {arrow::utf8(), arrow::large_utf8(),
                                                                    arrow::utf8_view()};
        return arrow::extension::json(kStorage[in_.ConsumeIntegralInRange<int>(0, 2)]);
      }
      default: return arrow::extension::uuid();
    }
  }

  std::shared_ptr<arrow::DataType> Decimal(arrow::Type::type id, int max_precision) {
    const int precision = in_.ConsumeIntegralInRange<int>(1, max_precision);
    const int scale = in_.ConsumeIntegralInRange<int>(-3, precision);
    switch (id) {
      case arrow::Type::DECIMAL32: return arrow::decimal32(precision, scale);
      case arrow::Type::DECIMAL64: return arrow::decimal64(precision, scale);
      case arrow::Type::DECIMAL128: return arrow::decimal128(precision, scale);
      default: return arrow::decimal256(precision, scale);
    }
  }

  std::shared_ptr<arrow::Field> Field(int index, const char* prefix, int depth) {
    auto type = Type(depth);
    return arrow::field(Name(index, prefix), type, in_.ConsumeIntegralInRange<int>(0, 3) != 0);
  }

  std::shared_ptr<arrow::DataType> Type(int depth) {
    if (depth >= 3 || in_.ConsumeIntegralInRange<int>(0, 2) != 0) return Leaf();
    switch (in_.ConsumeIntegralInRange<int>(0, 8)) {
      case 0: return arrow::list(Field(0, "item", depth + 1));
      case 1: return arrow::large_list(Field(0, "item", depth + 1));
      case 2: return arrow::list_view(Field(0, "item", depth + 1));
      case 3: return arrow::large_list_view(Field(0, "item", depth + 1));
      case 4: return arrow::fixed_size_list(Field(0, "item", depth + 1), in_.ConsumeIntegralInRange<int>(1, 3));
      case 5: {
        arrow::FieldVector fields;
        const int n = in_.ConsumeIntegralInRange<int>(1, 3);
        for (int i = 0; i < n; ++i) fields.push_back(Field(i, "f", depth + 1));
        return arrow::struct_(fields);
      }
      case 6: {
        static const std::shared_ptr<arrow::DataType> kKeys[] = {
            arrow::utf8(), arrow::large_utf8(), arrow::int32(), arrow::int64(), arrow::uint32(),
            arrow::int8(), arrow::boolean(), arrow::utf8_view()};
        auto key = in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? Leaf() : kKeys[in_.ConsumeIntegralInRange<int>(0, 7)];
        return std::make_shared<arrow::MapType>(key, Field(0, "value", depth + 1)->type(),
                                                /*keys_sorted=*/false);
      }
      case 7: {
        static const std::shared_ptr<arrow::DataType> kIndex[] = {
            arrow::int8(), arrow::int16(), arrow::int32(), arrow::int64(),
            arrow::uint8(), arrow::uint16(), arrow::uint32(), arrow::uint64()};
        auto value = Type(depth + 1);
        if (value->id() == arrow::Type::DICTIONARY || value->id() == arrow::Type::RUN_END_ENCODED) value = arrow::utf8();
        return arrow::dictionary(kIndex[in_.ConsumeIntegralInRange<int>(0, 7)], value);
      }
      default: {
        static const std::shared_ptr<arrow::DataType> kEnds[] = {arrow::int16(), arrow::int32(), arrow::int64()};
        auto value = Type(depth + 1);
        if (value->id() == arrow::Type::RUN_END_ENCODED) value = arrow::int64();
        return arrow::run_end_encoded(kEnds[in_.ConsumeIntegralInRange<int>(0, 2)], value);
      }
    }
  }

  // A slice [front, front + length) of a longer array: every level carries an offset.
  std::shared_ptr<arrow::Array> Make(const std::shared_ptr<arrow::DataType>& type, int64_t length,
                                     bool may_be_null) {
    const int64_t front = in_.ConsumeIntegralInRange<int64_t>(0, 3);
    const int64_t back = in_.ConsumeIntegralInRange<int64_t>(0, 2);
    return MakeUnsliced(type, front + length + back, may_be_null)->Slice(front, length);
  }

  bool all_values_valid = true;  // false once a value is drawn that fails ValidateFull

 private:
  // A validity bitmap (nullptr = no nulls). Non-nullable fields get nulls less often (those
  // rows must fail).
  std::shared_ptr<arrow::Buffer> Validity(int64_t n, bool may_be_null) {
    const int mode = in_.ConsumeIntegralInRange<int>(0, may_be_null ? 4 : 15);
    if (mode == 0 || mode > 4 || no_nulls_ > 0) return nullptr;
    std::vector<uint8_t> bits(static_cast<size_t>(arrow::bit_util::BytesForBits(n)), 0);
    if (mode == 1) return BufferOf(std::move(bits));  // all null
    for (int64_t i = 0; i < n; ++i) {
      bool valid;
      if (mode == 2) valid = in_.ConsumeBool();
      else if (mode == 3) valid = in_.ConsumeIntegral<uint8_t>() >= 24;  // mostly valid
      else valid = true;
      if (valid) arrow::bit_util::SetBit(bits.data(), i);
    }
    if (mode == 4 && n > 0) arrow::bit_util::ClearBit(bits.data(), in_.ConsumeIntegralInRange<int64_t>(0, n - 1));
    return BufferOf(std::move(bits));
  }

  std::vector<uint8_t> Bytes(int64_t n) {
    std::vector<uint8_t> out = in_.ConsumeBytes<uint8_t>(static_cast<size_t>(n));
    out.resize(static_cast<size_t>(n), 0);
    return out;
  }

  std::shared_ptr<arrow::Array> Data(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                     arrow::BufferVector buffers,
                                     std::vector<std::shared_ptr<arrow::ArrayData>> children = {}) {
    return arrow::MakeArray(
        arrow::ArrayData::Make(type, n, std::move(buffers), std::move(children), arrow::kUnknownNullCount));
  }

  std::shared_ptr<arrow::Array> Fixed(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                      bool may_be_null, int width) {
    auto validity = Validity(n, may_be_null);
    return Data(type, n, {validity, BufferOf(Bytes(n * width))});
  }

  template <typename T>
  void Put(std::vector<uint8_t>* out, int64_t i, T v) {
    std::memcpy(out->data() + i * sizeof(T), &v, sizeof(T));
  }

  // Unscaled decimal values: mostly within the precision, sometimes any bits.
  std::shared_ptr<arrow::Array> Decimals(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                         bool may_be_null) {
    const auto& dec = static_cast<const arrow::DecimalType&>(*type);
    const int width = dec.byte_width();
    auto validity = Validity(n, may_be_null);
    if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      all_values_valid = false;
      return Data(type, n, {validity, BufferOf(Bytes(n * width))});
    }
    int64_t limit = 1;
    for (int i = 0; i < std::min(dec.precision(), 18); ++i) limit *= 10;
    std::vector<uint8_t> values(static_cast<size_t>(n * width), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = in_.ConsumeIntegralInRange<int64_t>(-(limit - 1), limit - 1);
      for (int b = 0; b < width; ++b) {
        values[static_cast<size_t>(i * width + b)] =
            b < 8 ? static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * b)) : (v < 0 ? 0xff : 0);
      }
    }
    return Data(type, n, {validity, BufferOf(std::move(values))});
  }

  // Offsets starting anywhere (a leading gap), `max_len` per element; returns the end offset.
  template <typename O>
  std::shared_ptr<arrow::Buffer> Offsets(int64_t n, int max_len, int64_t* end) {
    std::vector<uint8_t> bytes(static_cast<size_t>((n + 1) * sizeof(O)));
    int64_t at = in_.ConsumeIntegralInRange<int64_t>(0, 3);
    Put<O>(&bytes, 0, static_cast<O>(at));
    for (int64_t i = 0; i < n; ++i) {
      at += in_.ConsumeIntegralInRange<int>(0, max_len);
      Put<O>(&bytes, i + 1, static_cast<O>(at));
    }
    *end = at;
    return BufferOf(std::move(bytes));
  }

  std::vector<uint8_t> Text(int64_t n, bool utf8) {
    // Text columns: ASCII letters mostly; raw bytes (maybe invalid UTF-8) sometimes.
    std::vector<uint8_t> out = Bytes(n);
    if (utf8 && in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      all_values_valid = false;
    } else if (utf8) {
      for (auto& c : out) c = static_cast<uint8_t>('a' + c % 26);
    }
    return out;
  }

  template <typename O>
  std::shared_ptr<arrow::Array> Binary(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                       bool may_be_null, bool utf8) {
    auto validity = Validity(n, may_be_null);
    int64_t end;
    auto offsets = Offsets<O>(n, 14, &end);
    return Data(type, n, {validity, offsets, BufferOf(Text(end + in_.ConsumeIntegralInRange<int>(0, 2), utf8))});
  }

  template <typename Builder>
  std::shared_ptr<arrow::Array> Views(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                      bool may_be_null, bool utf8) {
    Builder builder;
    for (int64_t i = 0; i < n; ++i) {
      // Inline (<= 12 bytes) and out-of-line views.
      const int len = in_.ConsumeIntegralInRange<int>(0, 20);
      if (may_be_null && in_.ConsumeIntegralInRange<int>(0, 7) == 0) {
        (void)builder.AppendNull();
        continue;
      }
      auto text = Text(len, utf8);
      (void)builder.Append(std::string(text.begin(), text.end()));  // never a null pointer
    }
    return builder.Finish().ValueOrDie();
  }

  template <typename O>
  std::shared_ptr<arrow::Array> List(const std::shared_ptr<arrow::DataType>& type, int64_t n, bool may_be_null) {
    auto validity = Validity(n, may_be_null);
    int64_t end;
    auto offsets = Offsets<O>(n, 4, &end);
    const auto& item = type->field(0);
    auto child = Make(item->type(), end + in_.ConsumeIntegralInRange<int>(0, 2), item->nullable());
    return Data(type, n, {validity, offsets}, {child->data()});
  }

  template <typename O>
  std::shared_ptr<arrow::Array> ListView(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                         bool may_be_null) {
    auto validity = Validity(n, may_be_null);
    const int64_t child_len = in_.ConsumeIntegralInRange<int64_t>(0, 3 * n + 4);
    const auto& item = type->field(0);
    auto child = Make(item->type(), child_len, item->nullable());
    std::vector<uint8_t> offsets(static_cast<size_t>(n * sizeof(O))), sizes(offsets.size());
    for (int64_t i = 0; i < n; ++i) {
      // Views may overlap and come in any order.
      const int64_t off = child_len == 0 ? 0 : in_.ConsumeIntegralInRange<int64_t>(0, child_len - 1);
      const int64_t size = child_len == 0 ? 0 : in_.ConsumeIntegralInRange<int64_t>(0, std::min<int64_t>(4, child_len - off));
      Put<O>(&offsets, i, static_cast<O>(off));
      Put<O>(&sizes, i, static_cast<O>(size));
    }
    return Data(type, n, {validity, BufferOf(std::move(offsets)), BufferOf(std::move(sizes))}, {child->data()});
  }

  std::shared_ptr<arrow::Array> Map(const std::shared_ptr<arrow::DataType>& type, int64_t n, bool may_be_null) {
    const auto& map = static_cast<const arrow::MapType&>(*type);
    auto validity = Validity(n, may_be_null);
    int64_t end;
    auto offsets = Offsets<int32_t>(n, 3, &end);
    const int64_t total = end + in_.ConsumeIntegralInRange<int>(0, 2);
    ++no_nulls_;  // Arrow forbids null map keys
    auto keys = Make(map.key_type(), total, /*may_be_null=*/false);
    --no_nulls_;
    auto values = Make(map.item_type(), total, map.item_field()->nullable());
    auto entries = arrow::StructArray::Make({keys, values}, {map.key_field(), map.item_field()}).ValueOrDie();
    return Data(type, n, {validity, offsets}, {entries->data()});
  }

  std::shared_ptr<arrow::Array> Dictionary(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                           bool may_be_null) {
    const auto& dict = static_cast<const arrow::DictionaryType&>(*type);
    const int64_t size = in_.ConsumeIntegralInRange<int64_t>(1, 6);
    auto dictionary = Make(dict.value_type(), size, may_be_null);
    auto validity = Validity(n, may_be_null);
    const int width = dict.index_type()->byte_width();
    std::vector<uint8_t> indices(static_cast<size_t>(n * width), 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t index = static_cast<uint8_t>(in_.ConsumeIntegralInRange<int64_t>(0, size - 1));
      indices[static_cast<size_t>(i * width)] = index;  // little-endian, fits every index type
    }
    auto index_array = Data(dict.index_type(), n, {validity, BufferOf(std::move(indices))});
    return arrow::DictionaryArray::FromArrays(type, index_array, dictionary).ValueOrDie();
  }

  std::shared_ptr<arrow::Array> RunEnd(const std::shared_ptr<arrow::DataType>& type, int64_t n, bool may_be_null) {
    const auto& ree = static_cast<const arrow::RunEndEncodedType&>(*type);
    std::vector<int64_t> ends;
    for (int64_t at = 0; at < n;) {
      at = std::min(n, at + in_.ConsumeIntegralInRange<int64_t>(1, 4));
      ends.push_back(at);
    }
    const int width = ree.run_end_type()->byte_width();
    std::vector<uint8_t> bytes(ends.size() * static_cast<size_t>(width));
    for (size_t i = 0; i < ends.size(); ++i) {
      if (width == 2) Put<int16_t>(&bytes, static_cast<int64_t>(i), static_cast<int16_t>(ends[i]));
      else if (width == 4) Put<int32_t>(&bytes, static_cast<int64_t>(i), static_cast<int32_t>(ends[i]));
      else Put<int64_t>(&bytes, static_cast<int64_t>(i), ends[i]);
    }
    const int64_t runs = static_cast<int64_t>(ends.size());
    auto run_ends = Data(ree.run_end_type(), runs, {nullptr, BufferOf(std::move(bytes))});
    auto values = Make(ree.value_type(), runs, may_be_null);
    return arrow::RunEndEncodedArray::Make(n, run_ends, values).ValueOrDie();
  }

  std::shared_ptr<arrow::Array> MakeUnsliced(const std::shared_ptr<arrow::DataType>& type, int64_t n,
                                             bool may_be_null) {
    using T = arrow::Type;
    switch (type->id()) {
      case T::BOOL: {
        auto validity = Validity(n, may_be_null);
        return Data(type, n, {validity, BufferOf(Bytes(arrow::bit_util::BytesForBits(n)))});
      }
      case T::INT8: case T::UINT8: return Fixed(type, n, may_be_null, 1);
      case T::INT16: case T::UINT16: case T::HALF_FLOAT: return Fixed(type, n, may_be_null, 2);
      case T::INT32: case T::UINT32: case T::FLOAT: case T::DATE32: return Fixed(type, n, may_be_null, 4);
      case T::INT64: case T::UINT64: case T::DOUBLE: case T::TIMESTAMP: return Fixed(type, n, may_be_null, 8);
      case T::DATE64: {
        auto validity = Validity(n, may_be_null);
        std::vector<uint8_t> values = Bytes(n * 8);
        if (in_.ConsumeIntegralInRange<int>(0, 3) != 0) {  // whole days, as Arrow wants
          for (int64_t i = 0; i < n; ++i) {
            int64_t v;
            std::memcpy(&v, values.data() + i * 8, 8);
            Put<int64_t>(&values, i, (v % 3000000) * 86400000);
          }
        } else {
          all_values_valid = false;
        }
        return Data(type, n, {validity, BufferOf(std::move(values))});
      }
      case T::STRING: return Binary<int32_t>(type, n, may_be_null, true);
      case T::LARGE_STRING: return Binary<int64_t>(type, n, may_be_null, true);
      case T::BINARY: return Binary<int32_t>(type, n, may_be_null, false);
      case T::LARGE_BINARY: return Binary<int64_t>(type, n, may_be_null, false);
      case T::STRING_VIEW: return Views<arrow::StringViewBuilder>(type, n, may_be_null, true);
      case T::BINARY_VIEW: return Views<arrow::BinaryViewBuilder>(type, n, may_be_null, false);
      case T::FIXED_SIZE_BINARY:
        return Fixed(type, n, may_be_null, static_cast<const arrow::FixedSizeBinaryType&>(*type).byte_width());
      case T::DECIMAL32: case T::DECIMAL64: case T::DECIMAL128: case T::DECIMAL256:
        return Decimals(type, n, may_be_null);
      case T::STRUCT: {
        auto validity = Validity(n, may_be_null);
        std::vector<std::shared_ptr<arrow::ArrayData>> children;
        for (const auto& f : type->fields()) children.push_back(Make(f->type(), n, f->nullable())->data());
        return Data(type, n, {validity}, std::move(children));
      }
      case T::LIST: return List<int32_t>(type, n, may_be_null);
      case T::LARGE_LIST: return List<int64_t>(type, n, may_be_null);
      case T::LIST_VIEW: return ListView<int32_t>(type, n, may_be_null);
      case T::LARGE_LIST_VIEW: return ListView<int64_t>(type, n, may_be_null);
      case T::FIXED_SIZE_LIST: {
        auto validity = Validity(n, may_be_null);
        const int32_t width = static_cast<const arrow::FixedSizeListType&>(*type).list_size();
        const auto& item = type->field(0);
        auto child = Make(item->type(), n * width, item->nullable());
        return Data(type, n, {validity}, {child->data()});
      }
      case T::MAP: return Map(type, n, may_be_null);
      case T::DICTIONARY: return Dictionary(type, n, may_be_null);
      case T::RUN_END_ENCODED: return RunEnd(type, n, may_be_null);
      case T::EXTENSION: {
        const auto& ext = static_cast<const arrow::ExtensionType&>(*type);
        auto storage = MakeUnsliced(ext.storage_type(), n, may_be_null);
        return ext.WrapArray(type, storage);
      }
      default:
        Fail("no generator for " + type->ToString());
    }
  }

  FuzzedDataProvider& in_;
  int no_nulls_ = 0;  // > 0: no validity bitmaps (map keys)
};

// Retargets some top-level scalar fields of a generated descriptor to other proto types and
// labels (the bound-descriptor path); BindArrowSchema decides which combinations it accepts.
arrow_zerobus::DescriptorProto Retarget(arrow_zerobus::DescriptorProto d, FuzzedDataProvider* in) {
  using F = pb::FieldDescriptorProto;
  static const F::Type kTypes[] = {F::TYPE_INT32, F::TYPE_INT64, F::TYPE_UINT32, F::TYPE_UINT64,
                                   F::TYPE_SINT32, F::TYPE_SINT64, F::TYPE_FIXED32, F::TYPE_FIXED64,
                                   F::TYPE_SFIXED32, F::TYPE_SFIXED64, F::TYPE_DOUBLE, F::TYPE_FLOAT,
                                   F::TYPE_BOOL, F::TYPE_STRING, F::TYPE_BYTES, F::TYPE_ENUM};
  bool enum_used = false;
  for (auto& field : *d.mutable_field()) {
    if (field.type() == F::TYPE_MESSAGE || !in->ConsumeBool()) continue;
    const F::Type type = kTypes[in->ConsumeIntegralInRange<int>(0, 15)];
    field.set_type(type);
    field.clear_type_name();
    if (type == F::TYPE_ENUM) {
      field.set_type_name("Kind");
      enum_used = true;
    }
    if (field.label() != F::LABEL_REPEATED && in->ConsumeBool()) {
      field.set_label(field.label() == F::LABEL_REQUIRED ? F::LABEL_OPTIONAL : F::LABEL_REQUIRED);
    }
    if (field.label() == F::LABEL_REPEATED && field.options().packed() != in->ConsumeBool()) {
      field.mutable_options()->set_packed(!field.options().packed());
    }
  }
  if (enum_used) {
    auto* e = d.add_enum_type();
    e->set_name("Kind");
    const char* kNames[] = {"a", "b", "C"};
    const int kNumbers[] = {0, 5, -7};
    for (int i = 0; i < 3; ++i) {
      auto* v = e->add_value();
      v->set_name(kNames[i]);
      v->set_number(kNumbers[i]);
    }
  }
  return d;
}

// Whether Arrow's scalar API yields a complete tree for this value (the reference walks it).
// It does not always (Arrow 26): GetScalar answers OK with a null pointer for a null slot of
// list<run_end_encoded<int16, struct<f0: uuid>>>, because MakeNullScalar gives up there (no
// builder for the uuid extension type) and returns nullptr. Such rows skip the reference.
bool ScalarTreeComplete(const std::shared_ptr<arrow::Scalar>& s) {
  if (s == nullptr) return false;
  switch (s->type->id()) {
    case arrow::Type::LIST: case arrow::Type::LARGE_LIST: case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW: case arrow::Type::FIXED_SIZE_LIST: case arrow::Type::MAP: {
      const auto& items = static_cast<const arrow::BaseListScalar&>(*s).value;
      if (items == nullptr) return !s->is_valid;
      for (int64_t j = 0; j < items->length(); ++j) {
        auto item = items->GetScalar(j);
        if (!item.ok() || !ScalarTreeComplete(*item)) return false;
      }
      return true;
    }
    case arrow::Type::STRUCT:
      for (const auto& child : static_cast<const arrow::StructScalar&>(*s).value) {
        if (!ScalarTreeComplete(child)) return false;
      }
      return true;
    case arrow::Type::RUN_END_ENCODED:
      return ScalarTreeComplete(static_cast<const arrow::RunEndEncodedScalar&>(*s).value);
    case arrow::Type::DICTIONARY: {
      if (!s->is_valid) return true;
      auto value = static_cast<const arrow::DictionaryScalar&>(*s).GetEncodedValue();
      return value.ok() && ScalarTreeComplete(*value);
    }
    case arrow::Type::EXTENSION:
      return !s->is_valid || ScalarTreeComplete(static_cast<const arrow::ExtensionScalar&>(*s).value);
    default:
      return true;
  }
}

void CheckEncoded(const RecordBatchEncoder& encoder, const arrow::RecordBatch& batch,
                  int64_t max_request_bytes, bool reference) {
  g_batch = &batch;
  auto result = encoder.Encode(batch);
  if (!result.ok()) Fail("Encode failed for a batch of its own schema: " + result.status().ToString());
  const EncodedBatch& out = *result;
  const int64_t records = out.num_records();
  const int64_t rows = batch.num_rows();

  // Rows: every source row is either one record or one failure, in order.
  if (records + static_cast<int64_t>(out.failed_rows.size()) != rows) Fail("records + failed rows != rows");
  std::vector<int> seen(static_cast<size_t>(rows), 0);
  for (int64_t i = 0; i < records; ++i) {
    const int64_t row = out.source_rows[static_cast<size_t>(i)];
    if (row < 0 || row >= rows || (i > 0 && row <= out.source_rows[static_cast<size_t>(i - 1)])) Fail("source_rows");
    seen[static_cast<size_t>(row)] += 1;
  }
  for (size_t i = 0; i < out.failed_rows.size(); ++i) {
    const int64_t row = out.failed_rows[i].row;
    if (row < 0 || row >= rows || (i > 0 && row <= out.failed_rows[i - 1].row)) Fail("failed_rows order");
    if (out.failed_rows[i].message.empty()) Fail("failed row without a message");
    seen[static_cast<size_t>(row)] += 1;
  }
  for (int s : seen) {
    if (s != 1) Fail("a row is both a record and a failure");
  }

  // Framing: each record is (0x0A, varint length, bytes), back to back inside the buffer.
  if (static_cast<int64_t>(out.record_offsets.size()) != records + 1) Fail("record_offsets size");
  if (records > 0) {
    if (out.buffer == nullptr || out.record_offsets.back() > out.buffer->size()) Fail("offsets past the buffer");
    const uint8_t* base = out.buffer->data();
    for (int64_t i = 0; i < records; ++i) {
      const int64_t begin = out.record_offsets[static_cast<size_t>(i)];
      const int64_t end = out.record_offsets[static_cast<size_t>(i) + 1];
      if (begin < 0 || end < begin + 2) Fail("record offsets not increasing");
      uint64_t len = 0;
      if (base[begin] != 0x0A) Fail("record framing tag");
      const uint8_t* at = base + begin + 1;
      if (!arrow_zerobus::wire::ReadVarint(at, base + end, &len)) Fail("record framing length");
      const int64_t used = at - (base + begin + 1);
      if (static_cast<int64_t>(len) != end - begin - 1 - used) Fail("record framing length");
      const std::string_view record = out.record(i);
      if (record.data() != reinterpret_cast<const char*>(base + begin + 1 + used) ||
          static_cast<int64_t>(record.size()) != static_cast<int64_t>(len)) {
        Fail("record(i) differs from its framed bytes");
      }
    }
  }

  // Chunks: consecutive, non-empty, covering every record, each within the request limit.
  int64_t next = 0;
  for (const RecordRange& chunk : out.chunks) {
    if (chunk.begin != next || chunk.end <= chunk.begin || chunk.end > records) Fail("chunks do not tile the records");
    if (static_cast<int64_t>(out.framed(chunk).size()) > max_request_bytes) Fail("chunk over the request limit");
    next = chunk.end;
  }
  if (next != records) Fail("chunks do not cover every record");

  // Parse every record with the encoder's own descriptor.
  std::unique_ptr<arrow_zerobus::testing::ProtoSchema> proto;
  try {
    proto = std::make_unique<arrow_zerobus::testing::ProtoSchema>(encoder.descriptor());
  } catch (const std::exception& e) {
    Fail(std::string("libprotobuf does not build the encoder's descriptor: ") + e.what() + "\n" +
         encoder.descriptor().DebugString());
  }
  std::vector<std::unique_ptr<pb::Message>> parsed;
  for (int64_t i = 0; i < records; ++i) {
    auto msg = proto->Parse(out.record(i));
    if (msg == nullptr) {
      Fail("record " + std::to_string(i) + " (row " + std::to_string(out.source_rows[static_cast<size_t>(i)]) +
           ") does not parse with the encoder's descriptor\n" + encoder.descriptor().DebugString());
    }
    parsed.push_back(std::move(msg));
  }
  if (!reference) return;

  // Values: the independent reference (Arrow scalars) against the parsed messages.
  std::vector<std::string> names;
  for (const auto& f : batch.schema()->fields()) names.push_back(f->name());
  int64_t record = 0;
  size_t failed = 0;
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<std::shared_ptr<arrow::Scalar>> values;
    for (int c = 0; c < batch.num_columns(); ++c) values.push_back(batch.column(c)->GetScalar(row).ValueOrDie());
    bool complete = true;
    for (const auto& v : values) complete = complete && ScalarTreeComplete(v);
    const bool is_failed = failed < out.failed_rows.size() && out.failed_rows[failed].row == row;
    if (!complete) {  // no reference for this row (see ScalarTreeComplete)
      if (is_failed) ++failed;
      else ++record;
      continue;
    }
    arrow_zerobus::testing::RowReference ref;
    if (is_failed) {
      ref.Message(values, names, *proto->descriptor(), nullptr, "");
      // A row too large for a (small) request limit fails whatever its values.
      const bool too_large = max_request_bytes < arrow_zerobus::kDefaultMaxRequestBytes &&
                             out.failed_rows[failed].message.find("request limit") != std::string::npos;
      if (!ref.must_fail && !too_large) {
        Fail("row " + std::to_string(row) + " failed but the type mapping says it encodes: " +
             out.failed_rows[failed].message);
      }
      ++failed;
      continue;
    }
    ref.Message(values, names, *proto->descriptor(), parsed[static_cast<size_t>(record)].get(), "");
    ++record;
    if (ref.must_fail) Fail("row " + std::to_string(row) + " encoded but the type mapping says it must fail");
    if (!ref.mismatches.empty()) Fail("row " + std::to_string(row) + ": " + ref.mismatches[0]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool init = [] {
    // Proto2 string fields with invalid UTF-8 make libprotobuf log; expected here.
    pb::SetLogHandler([](pb::LogLevel, const char*, int, const std::string&) {});
    return true;
  }();
  (void)init;
  FuzzedDataProvider in(data, size);
  Generator gen(&in);

  arrow::FieldVector fields;
  const int columns = in.ConsumeIntegralInRange<int>(1, 5);
  for (int i = 0; i < columns; ++i) fields.push_back(gen.Field(i, "c", 0));
  auto schema = arrow::schema(fields);

  EncodeOptions options;
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) options.max_request_bytes = in.ConsumeIntegralInRange<int64_t>(1, 2048);
  auto encoder = RecordBatchEncoder::Make(schema, options);
  if (!encoder.ok()) return 0;  // a schema the mapping refuses: fine, as long as nothing crashed

  // Mostly a few rows; sometimes enough to cross the encoder's 512-row blocks.
  const int64_t rows = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeIntegralInRange<int64_t>(500, 1100)
                                                                   : in.ConsumeIntegralInRange<int64_t>(0, 40);
  arrow::ArrayVector arrays;
  for (const auto& f : fields) arrays.push_back(gen.Make(f->type(), rows, f->nullable()));
  auto batch = arrow::RecordBatch::Make(schema, rows, arrays);
  arrow::Status structural = batch->Validate();
  if (!structural.ok()) {
    g_batch = nullptr;
    Fail("the generator made an invalid batch: " + structural.ToString());
  }
  const bool valid = gen.all_values_valid && batch->ValidateFull().ok();

  std::shared_ptr<arrow::RecordBatch> input = batch;
  if (rows > 2 && in.ConsumeBool()) {
    const int64_t offset = in.ConsumeIntegralInRange<int64_t>(1, rows - 1);
    input = batch->Slice(offset, in.ConsumeIntegralInRange<int64_t>(0, rows - offset));
  }
  CheckEncoded(**encoder, *input, options.max_request_bytes, valid);

  if (in.ConsumeBool()) {
    auto bound = RecordBatchEncoder::Make(schema, Retarget((*encoder)->descriptor(), &in), options);
    if (bound.ok()) CheckEncoded(**bound, *input, options.max_request_bytes, valid);
  }
  g_batch = nullptr;
  return 0;
}
