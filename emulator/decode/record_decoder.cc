#include "decode/record_decoder.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/utf8.h>

#include "common/proto_wire.h"
#include "decode/column_builder_internal.h"
#include "decode/schema_binding_internal.h"

namespace arrow_zerobus::emulator {

using google::protobuf::FieldDescriptorProto;
using internal::Column;
using internal::ColumnKind;

namespace {

using FDP = FieldDescriptorProto;

enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

const char* WireTypeName(uint32_t wt) {
  switch (wt) {
    case kVarint: return "varint";
    case kFixed64: return "64-bit";
    case kLen: return "length-delimited";
    case kStartGroup: return "start-group";
    case kEndGroup: return "end-group";
    case kFixed32: return "32-bit";
    default: return "invalid";
  }
}

WireType WireTypeOf(FDP::Type type) {
  switch (type) {
    case FDP::TYPE_DOUBLE:
    case FDP::TYPE_FIXED64:
    case FDP::TYPE_SFIXED64: return kFixed64;
    case FDP::TYPE_FLOAT:
    case FDP::TYPE_FIXED32:
    case FDP::TYPE_SFIXED32: return kFixed32;
    case FDP::TYPE_STRING:
    case FDP::TYPE_BYTES:
    case FDP::TYPE_MESSAGE: return kLen;
    default: return kVarint;
  }
}

// What to do with one value of a field, decided once per (proto type, column type).
enum class Conv : uint8_t {
  kBool,
  kInt,          // integer (or enum number) -> int8/16/32/64/date32/timestamp, range-checked
  kFloat,        // float -> float
  kFloatDouble,  // float -> double
  kDouble,       // double -> double
  kUtf8,         // string -> utf8 (validated)
  kBytes,        // bytes/string -> binary
  kEnumName,     // enum number -> utf8 name
  kDecimal,      // string -> decimal128
  kMessage,      // message -> struct (or map entry)
};

// Common (proto type, column) pairs appended inline without the general conversion switch.
enum class Fast : uint8_t { kGeneric, kInt64, kInt32, kDouble, kFloat, kBool, kUtf8, kBytes };

struct MessagePlan;

struct FieldPlan {
  Fast fast = Fast::kGeneric;
  std::string path;
  uint32_t number = 0;
  FDP::Type type = FDP::TYPE_INT64;
  WireType wire = kVarint;
  Conv conv = Conv::kInt;
  bool repeated = false;
  bool required = false;
  bool packable = false;   // repeated scalar: may arrive packed
  Column* column = nullptr;  // the bound column (list/map column for repeated fields)
  Column* target = nullptr;  // where values go: column, or the list element column
  const MessagePlan* message = nullptr;
  std::shared_ptr<internal::EnumValues> enum_values;
  int64_t min = 0, max = 0;  // kInt range of the target column
};

struct Slot {
  uint64_t raw;
  const uint8_t* ptr;
  uint32_t len;
};

struct MessagePlan {
  std::string path;  // column path of the message ("" for the record itself)
  std::vector<FieldPlan> fields;
  std::vector<Column*> unbound;  // nullable columns without a field
  bool map_entry = false;
  // field number -> index into fields (+1; 0 = unknown), dense when numbers are small.
  std::vector<uint16_t> dense;
  std::unordered_map<uint32_t, uint16_t> sparse;
  // Per-instance scratch: a plan is never active twice at once (recursion is refused).
  mutable std::vector<Slot> slots;
  mutable std::vector<uint8_t> seen;

  const FieldPlan* Find(uint32_t number) const {
    if (number < dense.size()) {
      uint16_t i = dense[number];
      return i ? &fields[i - 1] : nullptr;
    }
    auto it = sparse.find(number);
    return it == sparse.end() ? nullptr : &fields[it->second - 1];
  }
};

// A failure inside one record; Decode() adds the record index.
arrow::Status FieldError(const FieldPlan& fp, const std::string& what) {
  return arrow::Status::Invalid("field '", fp.path, "' (#", fp.number, "): ", what);
}

using wire::ReadVarint;

class ProtoDecoder final : public RecordDecoder {
 public:
  ProtoDecoder(std::shared_ptr<arrow::Schema> schema, const DecoderOptions& options)
      : RecordDecoder(std::move(schema)), options_(options) {}

  arrow::Status Init(const internal::BoundMessage& bound) {
    for (const auto& field : schema_->fields()) {
      columns_.push_back(internal::MakeColumn(field, options_.pool));
    }
    std::vector<Column*> top;
    for (auto& c : columns_) top.push_back(c.get());
    ARROW_ASSIGN_OR_RAISE(root_, Plan(bound, top, false, ""));
    for (auto& c : columns_) ARROW_RETURN_NOT_OK(internal::ResetColumn(c.get()));
    arrow::util::InitializeUTF8();
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(
      std::span<const std::string_view> records) override {
    const int64_t n = static_cast<int64_t>(records.size());
    for (auto& c : columns_) {
      if (c->kind == ColumnKind::kFixed) ARROW_RETURN_NOT_OK(c->values.Reserve(n * c->width));
      if (c->kind == ColumnKind::kBinary) ARROW_RETURN_NOT_OK(c->offsets.Reserve(n * 4));
    }
    for (int64_t i = 0; i < n; ++i) {
      const auto* p = reinterpret_cast<const uint8_t*>(records[i].data());
      record_begin_ = p;
      arrow::Status st = DecodeMessage(*root_, p, p + records[i].size(), 0);
      if (ARROW_PREDICT_FALSE(!st.ok())) {
        for (auto& c : columns_) ARROW_RETURN_NOT_OK(internal::ResetColumn(c.get()));
        return arrow::Status::Invalid("record ", i, ": ", st.message());
      }
    }
    std::vector<std::shared_ptr<arrow::ArrayData>> arrays;
    arrays.reserve(columns_.size());
    for (auto& c : columns_) {
      ARROW_ASSIGN_OR_RAISE(auto data, internal::FinishColumn(c.get()));
      arrays.push_back(std::move(data));
    }
    return arrow::RecordBatch::Make(schema_, n, std::move(arrays));
  }

 private:
  // Builds the plan of one message level; `targets` are the columns of that level (top-level
  // columns, struct children, or map key/value).
  arrow::Result<const MessagePlan*> Plan(const internal::BoundMessage& bound,
                                         const std::vector<Column*>& targets, bool map_entry,
                                         const std::string& path) {
    auto plan = std::make_unique<MessagePlan>();
    plan->map_entry = map_entry;
    plan->path = path;
    uint32_t max_number = 0;
    for (const auto& bf : bound.fields) max_number = std::max<uint32_t>(max_number, bf.number);
    if (max_number < 4096) plan->dense.assign(max_number + 1, 0);
    for (size_t i = 0; i < bound.fields.size(); ++i) {
      const auto& bf = bound.fields[i];
      FieldPlan fp;
      fp.path = bf.path;
      fp.number = static_cast<uint32_t>(bf.number);
      fp.type = bf.type;
      fp.wire = WireTypeOf(bf.type);
      fp.repeated = bf.repeated;
      fp.required = bf.required;
      fp.column = targets[bf.column_index];
      fp.target = fp.column;
      fp.enum_values = bf.enum_values;
      if (bf.is_map) {
        fp.conv = Conv::kMessage;
        ARROW_ASSIGN_OR_RAISE(
            fp.message, Plan(*bf.message, {fp.column->children[0].get(), fp.column->children[1].get()},
                             true, fp.path));
      } else {
        if (fp.repeated) fp.target = fp.column->children[0].get();
        fp.packable = fp.repeated && fp.wire != kLen;
        ARROW_RETURN_NOT_OK(ChooseConv(bf, &fp));
        fp.fast = ChooseFast(fp);
        if (fp.conv == Conv::kMessage) {
          std::vector<Column*> children;
          for (auto& c : fp.target->children) children.push_back(c.get());
          ARROW_ASSIGN_OR_RAISE(fp.message, Plan(*bf.message, children, false, fp.path));
        }
      }
      plan->fields.push_back(std::move(fp));
      if (max_number < 4096) {
        plan->dense[bf.number] = static_cast<uint16_t>(i + 1);
      } else {
        plan->sparse[bf.number] = static_cast<uint16_t>(i + 1);
      }
    }
    for (int index : bound.unbound_columns) plan->unbound.push_back(targets[index]);
    plan->slots.resize(plan->fields.size());
    plan->seen.resize(plan->fields.size());
    plans_.push_back(std::move(plan));
    return plans_.back().get();
  }

  static Fast ChooseFast(const FieldPlan& fp) {
    switch (fp.conv) {
      case Conv::kInt:
        if ((fp.type == FDP::TYPE_INT64 || fp.type == FDP::TYPE_SFIXED64) && fp.target->width == 8) {
          return Fast::kInt64;
        }
        if ((fp.type == FDP::TYPE_INT32 || fp.type == FDP::TYPE_SFIXED32) && fp.target->width == 4) {
          return Fast::kInt32;
        }
        return Fast::kGeneric;
      case Conv::kDouble: return Fast::kDouble;
      case Conv::kFloat: return Fast::kFloat;
      case Conv::kBool: return Fast::kBool;
      case Conv::kUtf8: return Fast::kUtf8;
      case Conv::kBytes: return Fast::kBytes;
      default: return Fast::kGeneric;
    }
  }

  static arrow::Status ChooseConv(const internal::BoundField& bf, FieldPlan* fp) {
    const Column& t = *fp->target;
    switch (t.type_id) {
      case arrow::Type::BOOL: fp->conv = Conv::kBool; break;
      case arrow::Type::INT8: fp->conv = Conv::kInt; fp->min = INT8_MIN; fp->max = INT8_MAX; break;
      case arrow::Type::INT16: fp->conv = Conv::kInt; fp->min = INT16_MIN; fp->max = INT16_MAX; break;
      case arrow::Type::INT32:
      case arrow::Type::DATE32: fp->conv = Conv::kInt; fp->min = INT32_MIN; fp->max = INT32_MAX; break;
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP: fp->conv = Conv::kInt; fp->min = INT64_MIN; fp->max = INT64_MAX; break;
      case arrow::Type::FLOAT: fp->conv = Conv::kFloat; break;
      case arrow::Type::DOUBLE:
        fp->conv = bf.type == FDP::TYPE_FLOAT ? Conv::kFloatDouble : Conv::kDouble;
        break;
      case arrow::Type::STRING:
        fp->conv = bf.type == FDP::TYPE_ENUM ? Conv::kEnumName : Conv::kUtf8;
        break;
      case arrow::Type::BINARY: fp->conv = Conv::kBytes; break;
      case arrow::Type::DECIMAL128: fp->conv = Conv::kDecimal; break;
      case arrow::Type::STRUCT: fp->conv = Conv::kMessage; break;
      default:
        return arrow::Status::NotImplemented("column '", bf.path, "': type ",
                                             t.field->type()->ToString(), " cannot be decoded");
    }
    return arrow::Status::OK();
  }

  arrow::Status WireError(const FieldPlan& fp, const uint8_t* at, const std::string& what) const {
    return FieldError(fp, what + " at byte " + std::to_string(at - record_begin_));
  }

  // Integer value of a raw varint/fixed field by its proto type, range-checked for the column.
  arrow::Status ToInt(const FieldPlan& fp, uint64_t raw, int64_t* out) const {
    int64_t v;
    switch (fp.type) {
      case FDP::TYPE_INT64:
      case FDP::TYPE_SFIXED64: v = static_cast<int64_t>(raw); break;
      case FDP::TYPE_INT32:
      case FDP::TYPE_SFIXED32: v = static_cast<int32_t>(static_cast<uint32_t>(raw)); break;
      case FDP::TYPE_UINT32:
      case FDP::TYPE_FIXED32: v = static_cast<uint32_t>(raw); break;
      case FDP::TYPE_UINT64:
      case FDP::TYPE_FIXED64:
        if (raw > static_cast<uint64_t>(INT64_MAX)) {
          return FieldError(fp, "value " + std::to_string(raw) + " does not fit a bigint");
        }
        v = static_cast<int64_t>(raw);
        break;
      case FDP::TYPE_SINT32: {
        uint32_t u = static_cast<uint32_t>(raw);
        v = static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));
        break;
      }
      case FDP::TYPE_SINT64: v = static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1)); break;
      case FDP::TYPE_ENUM: {
        v = static_cast<int32_t>(static_cast<uint32_t>(raw));
        if (!fp.enum_values->name_by_number.count(static_cast<int32_t>(v))) {
          return FieldError(fp, "unknown enum number " + std::to_string(v));
        }
        break;
      }
      default: v = static_cast<int64_t>(raw); break;
    }
    if (ARROW_PREDICT_FALSE(v < fp.min || v > fp.max)) {
      return FieldError(fp, "value " + std::to_string(v) + " out of range for column type " +
                                fp.target->field->type()->ToString());
    }
    *out = v;
    return arrow::Status::OK();
  }

  // Appends one scalar value (raw for varint/fixed, ptr/len for length-delimited) to `col`.
  arrow::Status AppendScalar(const FieldPlan& fp, Column* col, uint64_t raw, const uint8_t* ptr,
                             uint32_t len, int depth) {
    switch (fp.conv) {
      case Conv::kInt: {
        int64_t v = 0;
        ARROW_RETURN_NOT_OK(ToInt(fp, raw, &v));
        switch (col->width) {
          case 8: return col->AppendFixed<int64_t>(v);
          case 4: return col->AppendFixed<int32_t>(static_cast<int32_t>(v));
          case 2: return col->AppendFixed<int16_t>(static_cast<int16_t>(v));
          default: return col->AppendFixed<int8_t>(static_cast<int8_t>(v));
        }
      }
      case Conv::kDouble: {
        double d;
        std::memcpy(&d, &raw, 8);
        return col->AppendFixed<double>(d);
      }
      case Conv::kFloat:
      case Conv::kFloatDouble: {
        float f;
        uint32_t bits = static_cast<uint32_t>(raw);
        std::memcpy(&f, &bits, 4);
        return fp.conv == Conv::kFloat ? col->AppendFixed<float>(f)
                                       : col->AppendFixed<double>(static_cast<double>(f));
      }
      case Conv::kBool:
        return col->AppendBool(raw != 0);
      case Conv::kUtf8:
        if (ARROW_PREDICT_FALSE(!arrow::util::ValidateUTF8(ptr, len))) {
          return FieldError(fp, "string is not valid UTF-8");
        }
        return col->AppendBytes(ptr, len);
      case Conv::kBytes:
        return col->AppendBytes(ptr, len);
      case Conv::kEnumName: {
        int32_t number = static_cast<int32_t>(static_cast<uint32_t>(raw));
        auto it = fp.enum_values->name_by_number.find(number);
        if (it == fp.enum_values->name_by_number.end()) {
          return FieldError(fp, "unknown enum number " + std::to_string(number));
        }
        return col->AppendBytes(reinterpret_cast<const uint8_t*>(it->second.data()),
                                static_cast<int64_t>(it->second.size()));
      }
      case Conv::kDecimal: {
        arrow::Status st = internal::AppendDecimalText(
            col, std::string_view(reinterpret_cast<const char*>(ptr), len));
        if (!st.ok()) return FieldError(fp, st.message());
        return arrow::Status::OK();
      }
      case Conv::kMessage: {
        if (fp.message->map_entry) {
          // One map entry: key and value go to the map's children, the map row closes later.
          return DecodeMessage(*fp.message, ptr, ptr + len, depth + 1);
        }
        ARROW_RETURN_NOT_OK(DecodeMessage(*fp.message, ptr, ptr + len, depth + 1));
        return col->AppendValid();
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status DecodeMessage(const MessagePlan& plan, const uint8_t* p, const uint8_t* end,
                              int depth) {
    if (ARROW_PREDICT_FALSE(depth > options_.max_depth)) {
      return arrow::Status::Invalid("message nesting deeper than ", options_.max_depth);
    }
    std::fill(plan.seen.begin(), plan.seen.end(), 0);
    while (p < end) {
      const uint8_t* field_start = p;
      uint64_t tag;
      if (ARROW_PREDICT_FALSE(!ReadVarint(p, end, &tag))) {
        return arrow::Status::Invalid("malformed varint in a field tag at byte ",
                                      field_start - record_begin_);
      }
      const uint32_t wt = static_cast<uint32_t>(tag & 7);
      const uint64_t number = tag >> 3;
      const FieldPlan* fp = number <= UINT32_MAX ? plan.Find(static_cast<uint32_t>(number)) : nullptr;
      if (ARROW_PREDICT_FALSE(fp == nullptr)) {
        if (number == 0) {
          return arrow::Status::Invalid("field number 0 at byte ", field_start - record_begin_);
        }
        return arrow::Status::Invalid("unknown field number ", number, " (wire type ",
                                      WireTypeName(wt), ") at byte ", field_start - record_begin_,
                                      plan.path.empty() ? std::string()
                                                        : " in message '" + plan.path + "'");
      }
      uint64_t raw = 0;
      const uint8_t* ptr = nullptr;
      uint32_t len = 0;
      if (wt == kVarint) {
        if (ARROW_PREDICT_FALSE(!ReadVarint(p, end, &raw))) {
          return WireError(*fp, field_start, "malformed varint");
        }
      } else if (wt == kFixed64) {
        if (ARROW_PREDICT_FALSE(end - p < 8)) return WireError(*fp, field_start, "truncated 64-bit value");
        std::memcpy(&raw, p, 8);
        p += 8;
      } else if (wt == kFixed32) {
        if (ARROW_PREDICT_FALSE(end - p < 4)) return WireError(*fp, field_start, "truncated 32-bit value");
        uint32_t v;
        std::memcpy(&v, p, 4);
        raw = v;
        p += 4;
      } else if (wt == kLen) {
        uint64_t n;
        if (ARROW_PREDICT_FALSE(!ReadVarint(p, end, &n))) {
          return WireError(*fp, field_start, "malformed length varint");
        }
        if (ARROW_PREDICT_FALSE(n > static_cast<uint64_t>(end - p))) {
          return WireError(*fp, field_start,
                           "length " + std::to_string(n) + " runs past the end of the record");
        }
        ptr = p;
        len = static_cast<uint32_t>(n);
        p += n;
      } else {
        return WireError(*fp, field_start,
                         std::string("wire type ") + std::to_string(wt) + " (" + WireTypeName(wt) +
                             ") is not supported, expected " + WireTypeName(fp->wire));
      }

      if (fp->repeated) {
        if (wt == fp->wire) {
          ARROW_RETURN_NOT_OK(AppendScalar(*fp, fp->target, raw, ptr, len, depth));
        } else if (wt == kLen && fp->packable) {
          ARROW_RETURN_NOT_OK(DecodePacked(*fp, ptr, ptr + len, depth));
        } else {
          return WireError(*fp, field_start,
                           std::string("wrong wire type ") + std::to_string(wt) + " (" +
                               WireTypeName(wt) + "), expected " + WireTypeName(fp->wire) + " for " +
                               std::string(internal::ProtoTypeName(fp->type)));
        }
        continue;
      }
      if (ARROW_PREDICT_FALSE(wt != fp->wire)) {
        return WireError(*fp, field_start,
                         std::string("wrong wire type ") + std::to_string(wt) + " (" +
                             WireTypeName(wt) + "), expected " + WireTypeName(fp->wire) + " for " +
                             std::string(internal::ProtoTypeName(fp->type)));
      }
      size_t index = static_cast<size_t>(fp - plan.fields.data());
      plan.slots[index] = Slot{raw, ptr, len};  // a repeated occurrence: last one wins
      plan.seen[index] = 1;
    }

    // Every field of this level gets exactly one row (map entries: one entry).
    const size_t nfields = plan.fields.size();
    for (size_t i = 0; i < nfields; ++i) {
      const FieldPlan& fp = plan.fields[i];
      if (fp.repeated) {
        ARROW_RETURN_NOT_OK(fp.column->CloseList());
        continue;
      }
      if (plan.seen[i]) {
        const Slot& s = plan.slots[i];
        Column* col = fp.column;
        switch (fp.fast) {
          case Fast::kInt64:
            ARROW_RETURN_NOT_OK(col->AppendFixed<int64_t>(static_cast<int64_t>(s.raw)));
            break;
          case Fast::kInt32:
            ARROW_RETURN_NOT_OK(col->AppendFixed<int32_t>(static_cast<int32_t>(static_cast<uint32_t>(s.raw))));
            break;
          case Fast::kDouble: {
            double d;
            std::memcpy(&d, &s.raw, 8);
            ARROW_RETURN_NOT_OK(col->AppendFixed<double>(d));
            break;
          }
          case Fast::kFloat: {
            float f;
            uint32_t bits = static_cast<uint32_t>(s.raw);
            std::memcpy(&f, &bits, 4);
            ARROW_RETURN_NOT_OK(col->AppendFixed<float>(f));
            break;
          }
          case Fast::kBool:
            ARROW_RETURN_NOT_OK(col->AppendBool(s.raw != 0));
            break;
          case Fast::kUtf8:
            if (ARROW_PREDICT_FALSE(!arrow::util::ValidateUTF8(s.ptr, s.len))) {
              return FieldError(fp, "string is not valid UTF-8");
            }
            ARROW_RETURN_NOT_OK(col->AppendBytes(s.ptr, s.len));
            break;
          case Fast::kBytes:
            ARROW_RETURN_NOT_OK(col->AppendBytes(s.ptr, s.len));
            break;
          case Fast::kGeneric:
            ARROW_RETURN_NOT_OK(AppendScalar(fp, col, s.raw, s.ptr, s.len, depth));
            break;
        }
      } else if (fp.required) {
        return FieldError(fp, "required field is missing");
      } else if (plan.map_entry) {
        // Protobuf semantics: an absent key/value is its default; a nullable value is NULL.
        ARROW_RETURN_NOT_OK(internal::AppendNullOrDefault(fp.column));
      } else {
        ARROW_RETURN_NOT_OK(internal::AppendNull(fp.column));
      }
    }
    for (Column* c : plan.unbound) ARROW_RETURN_NOT_OK(internal::AppendNull(c));
    return arrow::Status::OK();
  }

  arrow::Status DecodePacked(const FieldPlan& fp, const uint8_t* p, const uint8_t* end, int depth) {
    const uint8_t* start = p;
    while (p < end) {
      uint64_t raw;
      if (fp.wire == kVarint) {
        if (!ReadVarint(p, end, &raw)) return WireError(fp, start, "malformed varint in packed field");
      } else if (fp.wire == kFixed64) {
        if (end - p < 8) return WireError(fp, start, "packed 64-bit values: length not a multiple of 8");
        std::memcpy(&raw, p, 8);
        p += 8;
      } else {
        if (end - p < 4) return WireError(fp, start, "packed 32-bit values: length not a multiple of 4");
        uint32_t v;
        std::memcpy(&v, p, 4);
        raw = v;
        p += 4;
      }
      ARROW_RETURN_NOT_OK(AppendScalar(fp, fp.target, raw, nullptr, 0, depth));
    }
    return arrow::Status::OK();
  }

  DecoderOptions options_;
  std::vector<std::unique_ptr<Column>> columns_;
  std::vector<std::unique_ptr<MessagePlan>> plans_;
  const MessagePlan* root_ = nullptr;
  const uint8_t* record_begin_ = nullptr;
};

}  // namespace

arrow::Result<std::unique_ptr<RecordDecoder>> RecordDecoder::MakeProto(
    const DescriptorProto& descriptor, std::shared_ptr<arrow::Schema> table_schema,
    const DecoderOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateTableSchema(*table_schema));
  ARROW_ASSIGN_OR_RAISE(auto bound, internal::BindDescriptor(descriptor, *table_schema));
  auto decoder = std::make_unique<ProtoDecoder>(std::move(table_schema), options);
  ARROW_RETURN_NOT_OK(decoder->Init(*bound));
  return decoder;
}

}  // namespace arrow_zerobus::emulator
