// CastForFlight: caller batches to the Flight schema of a table. Arrow's own casts are used only
// where they are exact (widening, container and offset-width changes, dictionary hydration);
// everything that could overflow, truncate or lose digits is checked here value by value, and a
// value that does not fit fails its row instead of being changed.
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>

#include <arrow/api.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/bitmap_ops.h>
#include <arrow/util/decimal.h>

#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/flight_schema.h"
#include "encode/decimal_text.h"

namespace arrow_zerobus {

namespace {

using arrow::ArrayData;
using arrow::DataType;
using ArrayDataPtr = std::shared_ptr<ArrayData>;

bool IsValidAt(const ArrayData& data, int64_t i) {
  const auto& validity = data.buffers.empty() ? nullptr : data.buffers[0];
  return validity == nullptr || arrow::bit_util::GetBit(validity->data(), data.offset + i);
}

// Which input row an index of a (nested) array belongs to. Failures are reported per input row,
// so nested indices are mapped back through the struct and list levels above them; only on a
// failure, so the common path costs nothing.
class RowMap {
 public:
  static RowMap Top() { return RowMap(Kind::kTop, nullptr, nullptr); }
  // Children of a struct (raw child data: index = the struct's physical slot).
  static RowMap StructChild(const RowMap* parent, const ArrayData* data) {
    return RowMap(Kind::kStruct, parent, data);
  }
  // Values of a list or map with 32-bit offsets.
  static RowMap ListChild(const RowMap* parent, const ArrayData* data) {
    return RowMap(Kind::kList, parent, data);
  }

  // The input row, or -1 when the index is in no row (under a null parent, or unreferenced).
  int64_t Row(int64_t index) const {
    switch (kind_) {
      case Kind::kTop:
        return index;
      case Kind::kStruct: {
        const int64_t slot = index - data_->offset;
        if (slot < 0 || slot >= data_->length || !IsValidAt(*data_, slot)) return -1;
        return parent_->Row(slot);
      }
      case Kind::kList: {
        const int32_t* offsets = data_->GetValues<int32_t>(1);
        const int64_t n = data_->length;
        const int64_t slot = std::upper_bound(offsets, offsets + n + 1, index) - offsets - 1;
        if (slot < 0 || slot >= n || !IsValidAt(*data_, slot)) return -1;
        return parent_->Row(slot);
      }
    }
    return -1;
  }

 private:
  enum class Kind { kTop, kStruct, kList };
  RowMap(Kind kind, const RowMap* parent, const ArrayData* data)
      : kind_(kind), parent_(parent), data_(data) {}
  Kind kind_;
  const RowMap* parent_;
  const ArrayData* data_;
};

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "TINYINT", "DECIMAL(5,2)", "ARRAY<INT>": the table column type in messages.
std::string DeltaName(const std::shared_ptr<DataType>& table_type) {
  auto text = DeltaTypeText(table_type, "");
  return text.ok() ? Upper(*text) : table_type->ToString();
}

std::string QuoteValue(std::string_view v) {
  constexpr size_t kMax = 40;
  return "'" + std::string(v.substr(0, kMax)) + (v.size() > kMax ? "...'" : "'");
}

void ToDigits(const arrow::Decimal256& v, encode_internal::DecimalDigits* digits) {
  const auto words = v.little_endian_array();
  encode_internal::DecimalToDigits(words.data(), 4, digits);
}

// Any scale (an input decimal's scale may be negative and large).
std::string DecimalText(const arrow::Decimal256& v, int32_t scale) {
  encode_internal::DecimalDigits digits;
  ToDigits(v, &digits);
  std::string out(static_cast<size_t>(encode_internal::DecimalTextSize(digits, scale)), '\0');
  encode_internal::WriteDecimalText(digits, scale, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

// A Delta scale (0..38) fits a sign, 39 digits, a point and "0." with room to spare.
constexpr size_t kColumnDecimalTextMax = 96;

// `v` (unscaled, at scale `from`) as an unscaled value at scale `to`, or nullopt when that is
// not exact or needs more than `precision` digits.
std::optional<arrow::Decimal256> FitDecimal(const arrow::Decimal256& v, int32_t from,
                                            int32_t to, int32_t precision) {
  if (v == arrow::Decimal256(0)) return v;
  if (to > from) {
    // Check the digits before multiplying, so that the product cannot overflow.
    const int64_t room = int64_t{precision} - (int64_t{to} - from);
    if (room < 1 || !v.FitsInPrecision(static_cast<int32_t>(room))) return std::nullopt;
  }
  if (to != from) {
    auto rescaled = v.Rescale(from, to);  // fails when digits would be dropped
    if (!rescaled.ok()) return std::nullopt;
    if (!rescaled->FitsInPrecision(precision)) return std::nullopt;
    return *rescaled;
  }
  if (!v.FitsInPrecision(precision)) return std::nullopt;
  return v;
}

// The integer at `i` of an integer array, exactly (uint64 included), and its text.
arrow::Decimal256 IntegerAsDecimal(const ArrayData& data, int64_t i, std::string* shown) {
  auto from_signed = [&](int64_t v) {
    *shown = std::to_string(v);
    return arrow::Decimal256(v);
  };
  auto from_unsigned = [&](uint64_t v) {
    *shown = std::to_string(v);
    return arrow::Decimal256(arrow::BasicDecimal256(static_cast<int64_t>(v >> 1)) *
                                 arrow::BasicDecimal256(2) +
                             arrow::BasicDecimal256(static_cast<int64_t>(v & 1)));
  };
  switch (data.type->id()) {
    case arrow::Type::INT8: return from_signed(data.GetValues<int8_t>(1)[i]);
    case arrow::Type::INT16: return from_signed(data.GetValues<int16_t>(1)[i]);
    case arrow::Type::INT32: return from_signed(data.GetValues<int32_t>(1)[i]);
    case arrow::Type::UINT8: return from_unsigned(data.GetValues<uint8_t>(1)[i]);
    case arrow::Type::UINT16: return from_unsigned(data.GetValues<uint16_t>(1)[i]);
    case arrow::Type::UINT32: return from_unsigned(data.GetValues<uint32_t>(1)[i]);
    case arrow::Type::UINT64: return from_unsigned(data.GetValues<uint64_t>(1)[i]);
    default: return from_signed(data.GetValues<int64_t>(1)[i]);
  }
}

// Casts one array (at any depth) to its Flight type and records the rows whose values do not
// fit. One Caster per batch.
class Caster {
 public:
  Caster(arrow::MemoryPool* pool, int64_t num_rows) : pool_(pool), ctx_(pool) {
    failed_.assign(static_cast<size_t>(num_rows), 0);
  }

  arrow::Result<ArrayDataPtr> Cast(ArrayDataPtr in, const arrow::Field& table,
                                   const std::shared_ptr<DataType>& flight,
                                   const std::string& path, const RowMap& rows);

  // Matches `in_fields`/`in_data` to the table's fields by name: a missing nullable field becomes
  // `null_length` nulls; a missing NOT NULL field or an unknown field is an error.
  arrow::Result<std::vector<ArrayDataPtr>> CastFields(
      const arrow::FieldVector& in_fields, const std::vector<ArrayDataPtr>& in_data,
      const arrow::FieldVector& table_fields, const arrow::FieldVector& flight_fields,
      const std::string& prefix, int64_t null_length, const RowMap& rows);

  std::vector<FlightRowFailure> TakeFailures() {
    std::sort(failures_.begin(), failures_.end(),
              [](const FlightRowFailure& a, const FlightRowFailure& b) { return a.row < b.row; });
    return std::move(failures_);
  }
  const std::vector<uint8_t>& failed() const { return failed_; }

 private:
  void Fail(const RowMap& rows, int64_t index, const std::string& path, std::string reason) {
    const int64_t row = rows.Row(index);
    if (row < 0 || failed_[static_cast<size_t>(row)]) return;  // keep the first problem
    failed_[static_cast<size_t>(row)] = 1;
    failures_.push_back(FlightRowFailure{row, path, std::move(reason)});
  }

  arrow::Result<ArrayDataPtr> Plain(ArrayDataPtr in);
  arrow::Result<ArrayDataPtr> ArrowCast(const ArrayDataPtr& in,
                                        const std::shared_ptr<DataType>& to) {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::compute::Cast(*arrow::MakeArray(in), to,
                                                         arrow::compute::CastOptions::Safe(),
                                                         &ctx_));
    return out->data();
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> ValidityAtZero(const ArrayData& in) {
    if (in.buffers[0] == nullptr || in.offset == 0) return in.buffers[0];
    return arrow::internal::CopyBitmap(pool_, in.buffers[0]->data(), in.offset, in.length);
  }

  arrow::Result<ArrayDataPtr> Integers(const ArrayDataPtr& in, const arrow::Field& table,
                                       const std::string& path, const RowMap& rows);
  template <typename InT, typename OutT>
  arrow::Result<ArrayDataPtr> NarrowIntegers(const ArrayDataPtr& in, const arrow::Field& table,
                                             const std::string& path, const RowMap& rows);
  template <typename OutT>
  arrow::Result<ArrayDataPtr> NarrowIntegersTo(const ArrayDataPtr& in, const arrow::Field& table,
                                               const std::string& path, const RowMap& rows);
  arrow::Result<ArrayDataPtr> Date(const ArrayDataPtr& in, const std::string& path,
                                   const RowMap& rows);
  arrow::Result<ArrayDataPtr> Timestamp(const ArrayDataPtr& in,
                                        const std::shared_ptr<DataType>& flight,
                                        const std::string& path, const RowMap& rows);
  arrow::Result<ArrayDataPtr> Decimal(const ArrayDataPtr& in, const arrow::Field& table,
                                      const std::string& path, const RowMap& rows);
  arrow::Result<ArrayDataPtr> List(ArrayDataPtr in, const arrow::Field& table,
                                   const std::shared_ptr<DataType>& flight,
                                   const std::string& path, const RowMap& rows);
  template <typename OffsetT>
  arrow::Result<ArrayDataPtr> ListViewToList(const ArrayDataPtr& in);
  arrow::Result<ArrayDataPtr> Map(const ArrayDataPtr& in, const arrow::Field& table,
                                  const std::shared_ptr<DataType>& flight,
                                  const std::string& path, const RowMap& rows);

  arrow::MemoryPool* pool_;
  arrow::compute::ExecContext ctx_;
  std::vector<uint8_t> failed_;  // per input row: already reported
  std::vector<FlightRowFailure> failures_;
};

arrow::Status TypeError(const std::string& path, const DataType& in,
                        const std::shared_ptr<DataType>& table_type) {
  return ConversionError("column '" + path + "': Arrow type " + in.ToString() +
                         " cannot be sent to the table's " + DeltaName(table_type) +
                         " column over Arrow Flight");
}

// Dictionary, run-end encoded and extension arrays as plain arrays of their values.
arrow::Result<ArrayDataPtr> Caster::Plain(ArrayDataPtr in) {
  while (true) {
    switch (in->type->id()) {
      case arrow::Type::EXTENSION: {
        auto array = arrow::MakeArray(in);
        in = static_cast<const arrow::ExtensionArray&>(*array).storage()->data();
        break;
      }
      case arrow::Type::DICTIONARY: {
        arrow::DictionaryArray dict(in);
        ARROW_ASSIGN_OR_RAISE(auto dense,
                              arrow::compute::Take(*dict.dictionary(), *dict.indices(),
                                                   arrow::compute::TakeOptions::Defaults(),
                                                   &ctx_));
        in = dense->data();
        break;
      }
      case arrow::Type::RUN_END_ENCODED: {
        arrow::RunEndEncodedArray ree(in);
        // The run ends as int64, then one index into the values per logical slot.
        ARROW_ASSIGN_OR_RAISE(auto ends_array, arrow::compute::Cast(
                                                   *ree.run_ends(), arrow::int64(),
                                                   arrow::compute::CastOptions::Safe(), &ctx_));
        const auto& ends = static_cast<const arrow::Int64Array&>(*ends_array);
        arrow::Int64Builder indices(pool_);
        ARROW_RETURN_NOT_OK(indices.Reserve(in->length));
        const int64_t* end_values = ends.raw_values();
        int64_t run = std::upper_bound(end_values, end_values + ends.length(), in->offset) -
                      end_values;
        for (int64_t i = 0; i < in->length; ++i) {
          while (run < ends.length() && end_values[run] <= in->offset + i) ++run;
          indices.UnsafeAppend(run);
        }
        ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
        ARROW_ASSIGN_OR_RAISE(auto dense,
                              arrow::compute::Take(*ree.values(), *index_array,
                                                   arrow::compute::TakeOptions::Defaults(),
                                                   &ctx_));
        in = dense->data();
        break;
      }
      default:
        return in;
    }
  }
}

arrow::Result<ArrayDataPtr> Caster::Cast(ArrayDataPtr in, const arrow::Field& table,
                                         const std::shared_ptr<DataType>& flight,
                                         const std::string& path, const RowMap& rows) {
  ARROW_ASSIGN_OR_RAISE(in, Plain(std::move(in)));
  const auto& table_type = table.type();
  if (!table.nullable() && in->GetNullCount() > 0) {
    for (int64_t i = 0; i < in->length; ++i) {
      if (!IsValidAt(*in, i)) Fail(rows, i, path, "null in NOT NULL column '" + path + "'");
    }
  }
  const arrow::Type::type id = in->type->id();
  switch (table_type->id()) {
    case arrow::Type::BOOL:
      if (id == arrow::Type::BOOL) return in;
      break;
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
      if (arrow::is_integer(id)) return Integers(in, table, path, rows);
      break;
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE: {
      // Only widening float casts: they are exact.
      const bool ok = id == arrow::Type::HALF_FLOAT || id == arrow::Type::FLOAT ||
                      (id == arrow::Type::DOUBLE && table_type->id() == arrow::Type::DOUBLE);
      if (!ok) break;
      return id == table_type->id() ? in : ArrowCast(in, flight);
    }
    case arrow::Type::STRING:
      if (id == arrow::Type::LARGE_STRING) return in;
      if (id == arrow::Type::STRING || id == arrow::Type::STRING_VIEW) {
        return ArrowCast(in, flight);
      }
      break;
    case arrow::Type::BINARY:
      if (id == arrow::Type::LARGE_BINARY) return in;
      if (id == arrow::Type::BINARY || id == arrow::Type::BINARY_VIEW ||
          id == arrow::Type::FIXED_SIZE_BINARY) {
        return ArrowCast(in, flight);
      }
      break;
    case arrow::Type::DATE32:
      if (id == arrow::Type::DATE32) return in;
      if (id == arrow::Type::DATE64) return Date(in, path, rows);
      break;
    case arrow::Type::TIMESTAMP:
      if (id == arrow::Type::TIMESTAMP) return Timestamp(in, flight, path, rows);
      break;
    case arrow::Type::DECIMAL128:
      if (arrow::is_decimal(id) || arrow::is_integer(id) || id == arrow::Type::STRING ||
          id == arrow::Type::LARGE_STRING || id == arrow::Type::STRING_VIEW) {
        return Decimal(in, table, path, rows);
      }
      break;
    case arrow::Type::LIST:
      if (id == arrow::Type::LIST || id == arrow::Type::LARGE_LIST ||
          id == arrow::Type::FIXED_SIZE_LIST || id == arrow::Type::LIST_VIEW ||
          id == arrow::Type::LARGE_LIST_VIEW) {
        return List(std::move(in), table, flight, path, rows);
      }
      break;
    case arrow::Type::MAP:
      if (id == arrow::Type::MAP) return Map(in, table, flight, path, rows);
      break;
    case arrow::Type::STRUCT: {
      if (id != arrow::Type::STRUCT) break;
      const RowMap child_rows = RowMap::StructChild(&rows, in.get());
      ARROW_ASSIGN_OR_RAISE(
          auto children,
          CastFields(in->type->fields(), in->child_data, table_type->fields(), flight->fields(),
                     path + ".", in->offset + in->length, child_rows));
      return ArrayData::Make(flight, in->length, {in->buffers[0]}, std::move(children),
                             in->null_count, in->offset);
    }
    default:
      break;
  }
  return TypeError(path, *in->type, table_type);
}

arrow::Result<std::vector<ArrayDataPtr>> Caster::CastFields(
    const arrow::FieldVector& in_fields, const std::vector<ArrayDataPtr>& in_data,
    const arrow::FieldVector& table_fields, const arrow::FieldVector& flight_fields,
    const std::string& prefix, int64_t null_length, const RowMap& rows) {
  std::vector<ArrayDataPtr> out;
  out.reserve(table_fields.size());
  std::vector<bool> used(in_fields.size(), false);
  for (size_t k = 0; k < table_fields.size(); ++k) {
    const auto& t = *table_fields[k];
    const std::string path = prefix + t.name();
    int found = -1;
    for (size_t i = 0; i < in_fields.size(); ++i) {
      if (in_fields[i]->name() != t.name()) continue;
      if (found >= 0) {
        return ConversionError("column '" + path + "' appears more than once in the batch");
      }
      found = static_cast<int>(i);
    }
    if (found < 0) {
      if (!t.nullable()) {
        return ConversionError("column '" + path +
                               "' is NOT NULL in the table but missing from the batch");
      }
      ARROW_ASSIGN_OR_RAISE(auto nulls,
                            arrow::MakeArrayOfNull(flight_fields[k]->type(), null_length, pool_));
      out.push_back(nulls->data());
      continue;
    }
    used[static_cast<size_t>(found)] = true;
    ARROW_ASSIGN_OR_RAISE(auto cast, Cast(in_data[static_cast<size_t>(found)], t,
                                          flight_fields[k]->type(), path, rows));
    out.push_back(std::move(cast));
  }
  for (size_t i = 0; i < in_fields.size(); ++i) {
    if (!used[i]) {
      return ConversionError("column '" + prefix + in_fields[i]->name() +
                             "' of the batch is not in the table");
    }
  }
  return out;
}

// Integers: widening is exact (Arrow's cast); anything else is checked value by value.
arrow::Result<ArrayDataPtr> Caster::Integers(const ArrayDataPtr& in, const arrow::Field& table,
                                             const std::string& path, const RowMap& rows) {
  const auto& in_type = static_cast<const arrow::FixedWidthType&>(*in->type);
  const auto& out_type = static_cast<const arrow::FixedWidthType&>(*table.type());
  if (in_type.id() == out_type.id()) return in;
  const bool in_signed = arrow::is_signed_integer(in_type.id());
  const bool widening = in_signed ? in_type.bit_width() <= out_type.bit_width()
                                  : in_type.bit_width() < out_type.bit_width();
  if (widening) return ArrowCast(in, table.type());
  switch (out_type.id()) {
    case arrow::Type::INT8: return NarrowIntegersTo<int8_t>(in, table, path, rows);
    case arrow::Type::INT16: return NarrowIntegersTo<int16_t>(in, table, path, rows);
    case arrow::Type::INT32: return NarrowIntegersTo<int32_t>(in, table, path, rows);
    default: return NarrowIntegersTo<int64_t>(in, table, path, rows);
  }
}

template <typename OutT>
arrow::Result<ArrayDataPtr> Caster::NarrowIntegersTo(const ArrayDataPtr& in,
                                                     const arrow::Field& table,
                                                     const std::string& path,
                                                     const RowMap& rows) {
  switch (in->type->id()) {
    case arrow::Type::INT16: return NarrowIntegers<int16_t, OutT>(in, table, path, rows);
    case arrow::Type::INT32: return NarrowIntegers<int32_t, OutT>(in, table, path, rows);
    case arrow::Type::INT64: return NarrowIntegers<int64_t, OutT>(in, table, path, rows);
    case arrow::Type::UINT8: return NarrowIntegers<uint8_t, OutT>(in, table, path, rows);
    case arrow::Type::UINT16: return NarrowIntegers<uint16_t, OutT>(in, table, path, rows);
    case arrow::Type::UINT32: return NarrowIntegers<uint32_t, OutT>(in, table, path, rows);
    case arrow::Type::UINT64: return NarrowIntegers<uint64_t, OutT>(in, table, path, rows);
    default: return NarrowIntegers<int8_t, OutT>(in, table, path, rows);
  }
}

template <typename InT, typename OutT>
arrow::Result<ArrayDataPtr> Caster::NarrowIntegers(const ArrayDataPtr& in,
                                                   const arrow::Field& table,
                                                   const std::string& path, const RowMap& rows) {
  ARROW_ASSIGN_OR_RAISE(auto validity, ValidityAtZero(*in));
  ARROW_ASSIGN_OR_RAISE(auto values,
                        arrow::AllocateBuffer(in->length * static_cast<int64_t>(sizeof(OutT)),
                                              pool_));
  const InT* src = in->GetValues<InT>(1);
  auto* dst = reinterpret_cast<OutT*>(values->mutable_data());
  for (int64_t i = 0; i < in->length; ++i) {
    const InT v = src[i];
    const bool fits = std::is_signed_v<InT>
                          ? (static_cast<int64_t>(v) >= std::numeric_limits<OutT>::min() &&
                             static_cast<int64_t>(v) <= std::numeric_limits<OutT>::max())
                          : static_cast<uint64_t>(v) <=
                                static_cast<uint64_t>(std::numeric_limits<OutT>::max());
    if (fits) {
      dst[i] = static_cast<OutT>(v);
    } else {
      dst[i] = 0;
      if (IsValidAt(*in, i)) {
        Fail(rows, i, path,
             "value " + std::to_string(v) + " overflows " + DeltaName(table.type()));
      }
    }
  }
  return ArrayData::Make(table.type(), in->length, {std::move(validity), std::move(values)},
                         in->null_count);
}

// date64 (milliseconds) to date32 (days): floor division, as on the protobuf path.
arrow::Result<ArrayDataPtr> Caster::Date(const ArrayDataPtr& in, const std::string& path,
                                         const RowMap& rows) {
  constexpr int64_t kMsPerDay = 86'400'000;
  ARROW_ASSIGN_OR_RAISE(auto validity, ValidityAtZero(*in));
  ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(in->length * 4, pool_));
  const int64_t* src = in->GetValues<int64_t>(1);
  auto* dst = reinterpret_cast<int32_t*>(values->mutable_data());
  for (int64_t i = 0; i < in->length; ++i) {
    const int64_t ms = src[i];
    const int64_t days = ms / kMsPerDay - ((ms % kMsPerDay) < 0 ? 1 : 0);
    if (days >= std::numeric_limits<int32_t>::min() && days <= std::numeric_limits<int32_t>::max()) {
      dst[i] = static_cast<int32_t>(days);
    } else {
      dst[i] = 0;
      if (IsValidAt(*in, i)) {
        Fail(rows, i, path, "date64 value " + std::to_string(ms) + " ms is outside the DATE range");
      }
    }
  }
  return ArrayData::Make(arrow::date32(), in->length, {std::move(validity), std::move(values)},
                         in->null_count);
}

// Any timestamp to microseconds: the instant is kept (seconds and milliseconds checked for
// overflow, nanoseconds floor-divided as on the protobuf path); the zone becomes the column's.
arrow::Result<ArrayDataPtr> Caster::Timestamp(const ArrayDataPtr& in,
                                              const std::shared_ptr<DataType>& flight,
                                              const std::string& path, const RowMap& rows) {
  const auto unit = static_cast<const arrow::TimestampType&>(*in->type).unit();
  if (unit == arrow::TimeUnit::MICRO) {
    if (in->type->Equals(*flight)) return in;
    auto out = in->Copy();  // same buffers, the column's zone
    out->type = flight;
    return out;
  }
  ARROW_ASSIGN_OR_RAISE(auto validity, ValidityAtZero(*in));
  ARROW_ASSIGN_OR_RAISE(auto values, arrow::AllocateBuffer(in->length * 8, pool_));
  const int64_t* src = in->GetValues<int64_t>(1);
  auto* dst = reinterpret_cast<int64_t*>(values->mutable_data());
  if (unit == arrow::TimeUnit::NANO) {
    for (int64_t i = 0; i < in->length; ++i) {
      dst[i] = src[i] / 1000 - ((src[i] % 1000) < 0 ? 1 : 0);
    }
  } else {
    const int64_t factor = unit == arrow::TimeUnit::SECOND ? 1'000'000 : 1'000;
    const char* unit_name = unit == arrow::TimeUnit::SECOND ? " s" : " ms";
    for (int64_t i = 0; i < in->length; ++i) {
      if (__builtin_mul_overflow(src[i], factor, &dst[i])) {
        dst[i] = 0;
        if (IsValidAt(*in, i)) {
          Fail(rows, i, path,
               "timestamp " + std::to_string(src[i]) + unit_name +
                   " overflows TIMESTAMP (64-bit microseconds)");
        }
      }
    }
  }
  return ArrayData::Make(flight, in->length, {std::move(validity), std::move(values)},
                         in->null_count);
}

// Decimals, integers and decimal strings to the canonical text of DECIMAL(p,s).
arrow::Result<ArrayDataPtr> Caster::Decimal(const ArrayDataPtr& in, const arrow::Field& table,
                                            const std::string& path, const RowMap& rows) {
  const auto& target = static_cast<const arrow::DecimalType&>(*table.type());
  const int32_t precision = target.precision();
  const int32_t scale = target.scale();
  const std::string name = DeltaName(table.type());
  const auto array = arrow::MakeArray(in);
  const arrow::Type::type id = in->type->id();
  arrow::LargeStringBuilder out(pool_);
  ARROW_RETURN_NOT_OK(out.Reserve(in->length));
  ARROW_RETURN_NOT_OK(out.ReserveData(in->length * (precision + 3)));
  // One value: its unscaled digits and scale, or (for text) nullopt when it is not a number.
  auto emit = [&](int64_t i, const std::optional<arrow::Decimal256>& value, int32_t from,
                  const std::string& shown) -> arrow::Status {
    if (!value) {
      Fail(rows, i, path, QuoteValue(shown) + " is not a valid " + name + " value");
      return out.AppendNull();
    }
    const auto fit = FitDecimal(*value, from, scale, precision);
    if (!fit) {
      Fail(rows, i, path,
           (arrow::is_integer(id) ? "value " : "decimal ") + shown + " does not fit " + name);
      return out.AppendNull();
    }
    encode_internal::DecimalDigits digits;
    ToDigits(*fit, &digits);
    uint8_t text[kColumnDecimalTextMax];
    const uint8_t* end = encode_internal::WriteDecimalText(digits, scale, text);
    return out.Append(text, static_cast<int64_t>(end - text));
  };
  for (int64_t i = 0; i < in->length; ++i) {
    if (!array->IsValid(i)) {
      ARROW_RETURN_NOT_OK(out.AppendNull());
      continue;
    }
    switch (id) {
      case arrow::Type::DECIMAL32:
      case arrow::Type::DECIMAL64:
      case arrow::Type::DECIMAL128:
      case arrow::Type::DECIMAL256: {
        const int32_t from = static_cast<const arrow::DecimalType&>(*in->type).scale();
        const uint8_t* bytes = static_cast<const arrow::FixedSizeBinaryArray&>(*array).GetValue(i);
        arrow::Decimal256 v;
        if (id == arrow::Type::DECIMAL32) v = arrow::BasicDecimal256(arrow::BasicDecimal32(bytes));
        if (id == arrow::Type::DECIMAL64) v = arrow::BasicDecimal256(arrow::BasicDecimal64(bytes));
        if (id == arrow::Type::DECIMAL128) v = arrow::BasicDecimal256(arrow::BasicDecimal128(bytes));
        if (id == arrow::Type::DECIMAL256) v = arrow::BasicDecimal256(bytes);
        ARROW_RETURN_NOT_OK(emit(i, v, from, DecimalText(v, from)));
        break;
      }
      case arrow::Type::STRING:
      case arrow::Type::LARGE_STRING:
      case arrow::Type::STRING_VIEW: {
        const std::string_view text =
            id == arrow::Type::STRING
                ? static_cast<const arrow::StringArray&>(*array).GetView(i)
            : id == arrow::Type::LARGE_STRING
                ? static_cast<const arrow::LargeStringArray&>(*array).GetView(i)
                : static_cast<const arrow::StringViewArray&>(*array).GetView(i);
        arrow::Decimal256 v;
        int32_t digits = 0;
        int32_t from = 0;
        const bool parsed = arrow::Decimal256::FromString(text, &v, &digits, &from).ok();
        ARROW_RETURN_NOT_OK(emit(i, parsed ? std::optional(v) : std::nullopt, from,
                                 std::string(text)));
        break;
      }
      default: {  // integers
        std::string shown;
        const arrow::Decimal256 v = IntegerAsDecimal(*in, i, &shown);
        ARROW_RETURN_NOT_OK(emit(i, v, 0, shown));
        break;
      }
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto result, out.Finish());
  return result->data();
}

// A list view as a list: its values gathered in slot order. (Arrow 26's own cast produced
// invalid lists from views with null slots.)
template <typename OffsetT>
arrow::Result<ArrayDataPtr> Caster::ListViewToList(const ArrayDataPtr& in) {
  const OffsetT* offsets = in->GetValues<OffsetT>(1);
  const OffsetT* sizes = in->GetValues<OffsetT>(2);
  ARROW_ASSIGN_OR_RAISE(auto out_offsets, arrow::AllocateBuffer((in->length + 1) * 4, pool_));
  auto* out = reinterpret_cast<int32_t*>(out_offsets->mutable_data());
  arrow::Int64Builder indices(pool_);
  out[0] = 0;
  for (int64_t i = 0; i < in->length; ++i) {
    const int64_t size = IsValidAt(*in, i) ? static_cast<int64_t>(sizes[i]) : 0;
    if (out[i] + size > std::numeric_limits<int32_t>::max()) {
      return ConversionError("list view of " + std::to_string(in->length) +
                             " slots holds more than 2^31 values: too many for one batch");
    }
    out[i + 1] = static_cast<int32_t>(out[i] + size);
    ARROW_RETURN_NOT_OK(indices.Reserve(size));
    for (int64_t k = 0; k < size; ++k) indices.UnsafeAppend(static_cast<int64_t>(offsets[i]) + k);
  }
  ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
  ARROW_ASSIGN_OR_RAISE(auto values,
                        arrow::compute::Take(*arrow::MakeArray(in->child_data[0]), *index_array,
                                             arrow::compute::TakeOptions::Defaults(), &ctx_));
  ARROW_ASSIGN_OR_RAISE(auto validity, ValidityAtZero(*in));
  const auto& value_field = static_cast<const arrow::BaseListType&>(*in->type).value_field();
  return ArrayData::Make(arrow::list(value_field), in->length,
                         {std::move(validity), std::move(out_offsets)}, {values->data()},
                         in->null_count);
}

// Every list kind becomes list<item>: Arrow's cast changes only the container (offsets width,
// fixed size), then the values are cast like a column of their own.
arrow::Result<ArrayDataPtr> Caster::List(ArrayDataPtr in, const arrow::Field& table,
                                         const std::shared_ptr<DataType>& flight,
                                         const std::string& path, const RowMap& rows) {
  const arrow::Type::type id = in->type->id();
  if (id == arrow::Type::LIST_VIEW) {
    ARROW_ASSIGN_OR_RAISE(in, ListViewToList<int32_t>(in));
  } else if (id == arrow::Type::LARGE_LIST_VIEW) {
    ARROW_ASSIGN_OR_RAISE(in, ListViewToList<int64_t>(in));
  } else if (id != arrow::Type::LIST) {
    const auto& value_field = static_cast<const arrow::BaseListType&>(*in->type).value_field();
    ARROW_ASSIGN_OR_RAISE(in, ArrowCast(in, arrow::list(value_field)));
  }
  const auto& table_item = static_cast<const arrow::ListType&>(*table.type()).value_field();
  const auto& flight_item = static_cast<const arrow::ListType&>(*flight).value_type();
  const RowMap item_rows = RowMap::ListChild(&rows, in.get());
  ARROW_ASSIGN_OR_RAISE(auto items,
                        Cast(in->child_data[0], *table_item, flight_item, path + ".item",
                             item_rows));
  return ArrayData::Make(flight, in->length, {in->buffers[0], in->buffers[1]}, {std::move(items)},
                         in->null_count, in->offset);
}

// Maps keep their offsets and entries; keys and values are cast, entries renamed to the
// service's entries{keys, values}.
arrow::Result<ArrayDataPtr> Caster::Map(const ArrayDataPtr& in, const arrow::Field& table,
                                        const std::shared_ptr<DataType>& flight,
                                        const std::string& path, const RowMap& rows) {
  const auto& table_map = static_cast<const arrow::MapType&>(*table.type());
  const auto& flight_map = static_cast<const arrow::MapType&>(*flight);
  const ArrayDataPtr& entries = in->child_data[0];
  const RowMap entry_rows = RowMap::ListChild(&rows, in.get());
  const RowMap field_rows = RowMap::StructChild(&entry_rows, entries.get());
  ARROW_ASSIGN_OR_RAISE(auto keys, Cast(entries->child_data[0], *table_map.key_field(),
                                        flight_map.key_type(), path + ".key", field_rows));
  ARROW_ASSIGN_OR_RAISE(auto values, Cast(entries->child_data[1], *table_map.item_field(),
                                          flight_map.item_type(), path + ".value", field_rows));
  auto new_entries =
      ArrayData::Make(flight_map.value_type(), entries->length, {entries->buffers[0]},
                      {std::move(keys), std::move(values)}, entries->null_count, entries->offset);
  return ArrayData::Make(flight, in->length, {in->buffers[0], in->buffers[1]},
                         {std::move(new_entries)}, in->null_count, in->offset);
}

}  // namespace

arrow::Result<FlightCastResult> CastForFlight(const arrow::RecordBatch& batch,
                                              const FlightTarget& target,
                                              arrow::MemoryPool* pool) {
  if (target.table_schema == nullptr || target.flight_schema == nullptr ||
      target.table_schema->num_fields() != target.flight_schema->num_fields()) {
    return ConversionError("the Flight target has no table schema (use FlightTargetFor...)");
  }
  const int64_t n = batch.num_rows();
  Caster caster(pool, n);
  std::vector<ArrayDataPtr> columns;
  for (const auto& c : batch.columns()) columns.push_back(c->data());
  ARROW_ASSIGN_OR_RAISE(
      auto cast, caster.CastFields(batch.schema()->fields(), columns,
                                   target.table_schema->fields(),
                                   target.flight_schema->fields(), "", n, RowMap::Top()));
  arrow::ArrayVector arrays;
  arrays.reserve(cast.size());
  for (auto& data : cast) arrays.push_back(arrow::MakeArray(std::move(data)));
  FlightCastResult result;
  result.batch = arrow::RecordBatch::Make(target.flight_schema, n, std::move(arrays));
  result.failures = caster.TakeFailures();
  if (result.failures.empty()) return result;

  // Leave the failed rows out.
  arrow::BooleanBuilder keep(pool);
  ARROW_RETURN_NOT_OK(keep.Reserve(n));
  result.kept_rows.reserve(static_cast<size_t>(n) - result.failures.size());
  for (int64_t i = 0; i < n; ++i) {
    const bool ok = caster.failed()[static_cast<size_t>(i)] == 0;
    keep.UnsafeAppend(ok);
    if (ok) result.kept_rows.push_back(i);
  }
  ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
  arrow::compute::ExecContext ctx(pool);
  ARROW_ASSIGN_OR_RAISE(auto filtered,
                        arrow::compute::Filter(arrow::Datum(result.batch), arrow::Datum(mask),
                                               arrow::compute::FilterOptions::Defaults(), &ctx));
  result.batch = filtered.record_batch();
  return result;
}

}  // namespace arrow_zerobus
