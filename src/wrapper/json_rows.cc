#include "wrapper/json_rows_internal.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <arrow/buffer.h>
#include <google/protobuf/descriptor.pb.h>

#include "arrow_zerobus/errors.h"
#include "common/proto_wire.h"
#include "encode/wire.h"

namespace arrow_zerobus::internal {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

constexpr int kMaxDepth = 100;
// Room for the request's own framing around the records (tag, length, offset).
constexpr int64_t kRequestOverhead = 64;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

using wire::ReadBytes;
using wire::ReadVarint;

template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(end - buf));
}

template <typename T>
void AppendFloating(std::string* out, T v) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    AppendNumber(out, v);  // shortest text that reads back as the same value
  }
}

void AppendString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // copy unescaped stretches at once
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendBase64(std::string* out, std::string_view s) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  size_t i = 0;
  const auto* b = reinterpret_cast<const uint8_t*>(s.data());
  for (; i + 3 <= s.size(); i += 3) {
    const uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    const char q[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                       kAlphabet[v & 63]};
    out->append(q, 4);
  }
  if (i < s.size()) {
    uint32_t v = uint32_t{b[i]} << 16;
    if (i + 1 < s.size()) v |= uint32_t{b[i + 1]} << 8;
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(i + 1 < s.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
  out->push_back('"');
}

// Transcodes serialized messages; `error` says what was wrong (no allocation on success paths
// beyond the output's growth).
using RepeatedFields =
    std::unordered_map<const Descriptor*, std::vector<const FieldDescriptor*>>;

class Transcoder {
 public:
  Transcoder(std::string* out, const RepeatedFields* repeated) : out_(out), repeated_(repeated) {}

  bool Message(const Descriptor* d, const uint8_t* p, const uint8_t* end, int depth) {
    if (depth > kMaxDepth) return Fail("nesting deeper than 100");
    out_->push_back('{');
    const FieldDescriptor* open = nullptr;  // repeated field whose array (or map) is open
    int64_t elements = 0;                   // written into it so far
    bool first = true;
    // Repeated fields in number order; those the record skips are written empty. Records carry
    // their fields in number order (the encoder writes them so).
    const std::vector<const FieldDescriptor*>& reps = repeated_->at(d);
    size_t next_rep = 0;
    auto write_empty_before = [&](int number) {
      while (next_rep < reps.size() && reps[next_rep]->number() < number) {
        const FieldDescriptor* r = reps[next_rep++];
        if (!first) out_->push_back(',');
        first = false;
        AppendString(out_, r->name());
        out_->append(r->is_map() ? ":{}" : ":[]");
      }
    };
    while (p < end) {
      uint64_t tag;
      if (!ReadVarint(p, end, &tag)) return Fail("truncated tag");
      const int number = static_cast<int>(tag >> 3);
      const uint32_t wire = static_cast<uint32_t>(tag & 7);
      const FieldDescriptor* f = d->FindFieldByNumber(number);
      if (f == nullptr) return Fail("field number " + std::to_string(number) + " not in " + d->name());
      if (open != nullptr && open != f) {
        out_->push_back(open->is_map() ? '}' : ']');
        open = nullptr;
      }
      if (open == nullptr) {
        write_empty_before(number);
        if (next_rep < reps.size() && reps[next_rep] == f) ++next_rep;
      }
      if (open == nullptr) {
        if (!first) out_->push_back(',');
        first = false;
        AppendString(out_, f->name());
        out_->push_back(':');
        if (f->is_repeated()) {
          out_->push_back(f->is_map() ? '{' : '[');
          open = f;
          elements = 0;
        }
      }
      if (f->is_repeated() && wire == kLen && f->cpp_type() != FieldDescriptor::CPPTYPE_STRING &&
          f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        // Packed scalars: every value in one length-delimited run.
        std::string_view run;
        if (!ReadBytes(p, end, &run)) return Fail("truncated packed field " + f->name());
        const auto* q = reinterpret_cast<const uint8_t*>(run.data());
        const uint8_t* run_end = q + run.size();
        while (q < run_end) {
          if (elements++ > 0) out_->push_back(',');
          if (!Scalar(f, PackedWireType(f), q, run_end)) return false;
        }
        continue;
      }
      if (f->is_repeated() && elements++ > 0) out_->push_back(',');
      if (f->is_map()) {
        if (wire != kLen) return Fail("map entry " + f->name() + " is not length-delimited");
        std::string_view entry;
        if (!ReadBytes(p, end, &entry)) return Fail("truncated map entry " + f->name());
        const auto* q = reinterpret_cast<const uint8_t*>(entry.data());
        if (!MapEntry(f->message_type(), q, q + entry.size(), depth + 1)) return false;
        continue;
      }
      if (!Scalar(f, wire, p, end, depth)) return false;
    }
    if (open != nullptr) out_->push_back(open->is_map() ? '}' : ']');
    write_empty_before(std::numeric_limits<int>::max());
    out_->push_back('}');
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string what) {
    error_ = std::move(what);
    return false;
  }

  static uint32_t PackedWireType(const FieldDescriptor* f) {
    switch (f->type()) {
      case FieldDescriptor::TYPE_FIXED32:
      case FieldDescriptor::TYPE_SFIXED32:
      case FieldDescriptor::TYPE_FLOAT:
        return kFixed32;
      case FieldDescriptor::TYPE_FIXED64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_DOUBLE:
        return kFixed64;
      default:
        return kVarint;
    }
  }

  // One value of `f` (its wire type already read).
  bool Scalar(const FieldDescriptor* f, uint32_t wire, const uint8_t*& p, const uint8_t* end,
              int depth = 0) {
    uint64_t v = 0;
    switch (wire) {
      case kVarint:
        if (!ReadVarint(p, end, &v)) return Fail("truncated varint in " + f->name());
        break;
      case kFixed32:
        if (end - p < 4) return Fail("truncated fixed32 in " + f->name());
        {
          uint32_t x;
          std::memcpy(&x, p, 4);
          v = x;
        }
        p += 4;
        break;
      case kFixed64:
        if (end - p < 8) return Fail("truncated fixed64 in " + f->name());
        std::memcpy(&v, p, 8);
        p += 8;
        break;
      case kLen: {
        std::string_view bytes;
        if (!ReadBytes(p, end, &bytes)) return Fail("truncated bytes in " + f->name());
        const auto* inner = reinterpret_cast<const uint8_t*>(bytes.data());
        switch (f->type()) {
          case FieldDescriptor::TYPE_STRING:
            AppendString(out_, bytes);
            return true;
          case FieldDescriptor::TYPE_BYTES:
            AppendBase64(out_, bytes);
            return true;
          case FieldDescriptor::TYPE_MESSAGE:
            return Message(f->message_type(), inner, inner + bytes.size(), depth + 1);
          default:
            return Fail("field " + f->name() + " has a length-delimited value");
        }
      }
      default:
        return Fail("unsupported wire type " + std::to_string(wire) + " in " + f->name());
    }
    switch (f->type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SFIXED32:
        AppendNumber(out_, static_cast<int32_t>(v));
        return true;
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SFIXED64:
        AppendNumber(out_, static_cast<int64_t>(v));
        return true;
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        AppendNumber(out_, static_cast<uint32_t>(v));
        return true;
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        AppendNumber(out_, v);
        return true;
      case FieldDescriptor::TYPE_SINT32: {
        const uint32_t u = static_cast<uint32_t>(v);
        AppendNumber(out_, static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1)));
        return true;
      }
      case FieldDescriptor::TYPE_SINT64:
        AppendNumber(out_, static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)));
        return true;
      case FieldDescriptor::TYPE_BOOL:
        out_->append(v != 0 ? "true" : "false");
        return true;
      case FieldDescriptor::TYPE_ENUM: {
        const auto* value = f->enum_type()->FindValueByNumber(static_cast<int32_t>(v));
        if (value != nullptr) {
          AppendString(out_, value->name());
        } else {
          AppendNumber(out_, static_cast<int32_t>(v));
        }
        return true;
      }
      case FieldDescriptor::TYPE_FLOAT: {
        float x;
        const uint32_t bits = static_cast<uint32_t>(v);
        std::memcpy(&x, &bits, 4);
        AppendFloating(out_, x);
        return true;
      }
      case FieldDescriptor::TYPE_DOUBLE: {
        double x;
        std::memcpy(&x, &v, 8);
        AppendFloating(out_, x);
        return true;
      }
      default:
        return Fail("field " + f->name() + " has an unexpected wire type");
    }
  }

  static bool Skip(uint32_t wire_type, const uint8_t*& p, const uint8_t* end) {
    wire::Reader r(p, end);
    if (!r.Skip(wire_type)) return false;
    p = r.p;
    return true;
  }

  // A map entry as `"key":value` inside the map's object: the entry is scanned once to find
  // its key and value (in either order, either may be absent), then both are written.
  bool MapEntry(const Descriptor* entry, const uint8_t* p, const uint8_t* end, int depth) {
    const FieldDescriptor* key_field = entry->FindFieldByNumber(1);
    const FieldDescriptor* value_field = entry->FindFieldByNumber(2);
    if (key_field == nullptr || value_field == nullptr) return Fail("malformed map entry type");
    const uint8_t* key_at = nullptr;
    const uint8_t* value_at = nullptr;
    uint32_t key_wire = 0, value_wire = 0;
    while (p < end) {
      uint64_t tag;
      if (!ReadVarint(p, end, &tag)) return Fail("truncated map entry tag");
      const int number = static_cast<int>(tag >> 3);
      const uint32_t wire = static_cast<uint32_t>(tag & 7);
      if (number == 1) {
        key_at = p;
        key_wire = wire;
      } else if (number == 2) {
        value_at = p;
        value_wire = wire;
      } else {
        return Fail("map entry field number " + std::to_string(number));
      }
      if (!Skip(wire, p, end)) return Fail("truncated map entry");
    }
    // JSON object keys are strings: numbers and booleans are written as their text.
    const bool quoted = key_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
    if (key_at == nullptr) {
      out_->append(quoted ? "\"\"" : key_field->type() == FieldDescriptor::TYPE_BOOL
                                         ? "\"false\""
                                         : "\"0\"");
    } else {
      if (!quoted) out_->push_back('"');
      if (!Scalar(key_field, key_wire, key_at, end, depth)) return false;
      if (!quoted) out_->push_back('"');
    }
    out_->push_back(':');
    if (value_at == nullptr) {
      out_->append("null");
      return true;
    }
    return Scalar(value_field, value_wire, value_at, end, depth);
  }

  std::string* out_;
  const RepeatedFields* repeated_;
  std::string error_;
};

void CollectRepeated(const Descriptor* d, RepeatedFields* out) {
  if (out->count(d)) return;
  auto& fields = (*out)[d];
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) fields.push_back(f);
    if (f->message_type() != nullptr) CollectRepeated(f->message_type(), out);
  }
  std::sort(fields.begin(), fields.end(), [](const FieldDescriptor* a, const FieldDescriptor* b) {
    return a->number() < b->number();
  });
}

}  // namespace

arrow::Result<std::unique_ptr<JsonRowsConverter>> JsonRowsConverter::Make(
    const DescriptorProto& descriptor) {
  std::unique_ptr<JsonRowsConverter> c(new JsonRowsConverter());
  google::protobuf::FileDescriptorProto file;
  file.set_name("arrow_zerobus_json_rows.proto");
  file.set_syntax("proto2");
  *file.add_message_type() = descriptor;
  const auto* fd = c->pool_.BuildFile(file);
  if (fd == nullptr || fd->message_type_count() != 1) {
    return ConversionError("descriptor '" + descriptor.name() +
                           "' is not a valid message type for JSON rows");
  }
  c->root_ = fd->message_type(0);
  CollectRepeated(c->root_, &c->repeated_);
  return c;
}

arrow::Result<std::string> JsonRowsConverter::ToJson(std::string_view record) const {
  std::string out;
  Transcoder t(&out, &repeated_);
  const auto* p = reinterpret_cast<const uint8_t*>(record.data());
  if (!t.Message(root_, p, p + record.size(), 0)) {
    return arrow::Status::Invalid("record cannot be transcoded to JSON: ", t.error());
  }
  return out;
}

arrow::Result<EncodedBatch> JsonRowsConverter::Convert(const EncodedBatch& encoded,
                                                       int64_t max_request_bytes) const {
  EncodedBatch out;
  const int64_t n = encoded.num_records();
  const int64_t max_body = max_request_bytes - kRequestOverhead;
  std::string buffer;
  buffer.reserve(static_cast<size_t>(encoded.record_offsets.empty()
                                         ? 0
                                         : encoded.record_offsets.back() * 2));
  out.record_offsets.reserve(static_cast<size_t>(n) + 1);
  out.source_rows.reserve(static_cast<size_t>(n));
  out.record_offsets.push_back(0);
  std::vector<RowError> failures;
  std::string row;  // reused: one growing scratch for every row
  int64_t chunk_begin = 0, chunk_body = 0, records = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t source_row = encoded.source_rows[static_cast<size_t>(i)];
    row.clear();
    Transcoder t(&row, &repeated_);
    const std::string_view record = encoded.record(i);
    const auto* p = reinterpret_cast<const uint8_t*>(record.data());
    if (!t.Message(root_, p, p + record.size(), 0)) [[unlikely]] {
      failures.push_back({source_row, "row " + std::to_string(source_row) +
                                          ": cannot be written as JSON: " + t.error()});
      continue;
    }
    const int64_t framed =
        1 + encode_internal::VarintSize(row.size()) + static_cast<int64_t>(row.size());
    if (framed > max_body) [[unlikely]] {
      failures.push_back({source_row, "row " + std::to_string(source_row) + ": row is " +
                                          std::to_string(row.size()) +
                                          " bytes of JSON, over the request limit " +
                                          std::to_string(max_request_bytes)});
      continue;
    }
    if (chunk_body + framed > max_body) {
      out.chunks.push_back({chunk_begin, records});
      chunk_begin = records;
      chunk_body = 0;
    }
    buffer.push_back(0x0A);  // JsonRecordBatch.records, field 1, length-delimited
    uint8_t length[10];
    const uint8_t* length_end = encode_internal::WriteVarint(length, row.size());
    buffer.append(reinterpret_cast<const char*>(length), length_end - length);
    buffer.append(row);
    chunk_body += framed;
    ++records;
    out.record_offsets.push_back(static_cast<int64_t>(buffer.size()));
    out.source_rows.push_back(source_row);
  }
  if (records > chunk_begin) out.chunks.push_back({chunk_begin, records});
  // Failures of both steps, by row.
  out.failed_rows.reserve(encoded.failed_rows.size() + failures.size());
  size_t a = 0, b = 0;
  while (a < encoded.failed_rows.size() || b < failures.size()) {
    if (b >= failures.size() ||
        (a < encoded.failed_rows.size() && encoded.failed_rows[a].row < failures[b].row)) {
      out.failed_rows.push_back(encoded.failed_rows[a++]);
    } else {
      out.failed_rows.push_back(std::move(failures[b++]));
    }
  }
  out.buffer = arrow::Buffer::FromString(std::move(buffer));
  return out;
}

}  // namespace arrow_zerobus::internal
