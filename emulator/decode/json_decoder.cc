// RecordType JSON: each record is one JSON object parsed against the table schema.
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <arrow/util/checked_cast.h>
#include <nlohmann/json.hpp>

#include "decode/base64_internal.h"
#include "decode/column_builder_internal.h"
#include "decode/record_decoder.h"

namespace arrow_zerobus::emulator {

using internal::Column;
using internal::ColumnKind;
using json = nlohmann::json;

namespace {

arrow::Status ValueError(const std::string& path, const std::string& what) {
  return arrow::Status::Invalid("column '", path, "': ", what);
}

// True when no path in `v` nests `limit` containers deep (an explicit stack: no recursion).
bool NestsLessThan(const json& v, int limit) {
  std::vector<std::pair<const json*, int>> todo{{&v, 0}};
  while (!todo.empty()) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    if (depth + 1 >= limit) return false;
    for (const auto& child : *node) todo.emplace_back(&child, depth + 1);
  }
  return true;
}

std::string Abbrev(const json& v) {
  // dump() recurses per nesting level: a record nested 100k deep would overflow the stack, so
  // deep containers are described instead of dumped.
  if (!NestsLessThan(v, 64)) {
    return v.is_array() ? "an array nested 64 or more levels deep"
                        : "an object nested 64 or more levels deep";
  }
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool ParseDigits(std::string_view s, size_t& i, int n, int* out) {
  int v = 0;
  for (int k = 0; k < n; ++k, ++i) {
    if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool ParseDate(std::string_view s, size_t& i, int64_t* days) {
  int y, m, d;
  if (!ParseDigits(s, i, 4, &y) || i >= s.size() || s[i++] != '-' || !ParseDigits(s, i, 2, &m) ||
      i >= s.size() || s[i++] != '-' || !ParseDigits(s, i, 2, &d)) {
    return false;
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return false;
  *days = internal::DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

// "YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,9}]]][Z|(+|-)HH[:]MM]" -> microseconds since epoch.
// `allow_offset` is false for timestamp_ntz.
bool ParseTimestamp(std::string_view s, bool allow_offset, int64_t* micros) {
  size_t i = 0;
  int64_t days;
  if (!ParseDate(s, i, &days)) return false;
  int64_t seconds_of_day = 0, fraction = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == ' ')) {
    ++i;
    int hh, mm, ss = 0;
    if (!ParseDigits(s, i, 2, &hh) || i >= s.size() || s[i++] != ':' || !ParseDigits(s, i, 2, &mm)) {
      return false;
    }
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!ParseDigits(s, i, 2, &ss)) return false;
      if (i < s.size() && s[i] == '.') {
        ++i;
        int digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          if (digits < 6) fraction = fraction * 10 + (s[i] - '0');
          ++digits;
          ++i;
        }
        if (digits == 0 || digits > 9) return false;
        for (int k = digits; k < 6; ++k) fraction *= 10;
      }
    }
    if (hh > 23 || mm > 59 || ss > 59) return false;
    seconds_of_day = hh * 3600 + mm * 60 + ss;
  }
  int64_t offset_seconds = 0;
  if (i < s.size()) {
    if (!allow_offset) return false;
    if (s[i] == 'Z' || s[i] == 'z') {
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      int sign = s[i++] == '-' ? -1 : 1;
      int oh, om;
      if (!ParseDigits(s, i, 2, &oh)) return false;
      if (i < s.size() && s[i] == ':') ++i;
      if (!ParseDigits(s, i, 2, &om) || oh > 23 || om > 59) return false;
      offset_seconds = sign * (oh * 3600 + om * 60);
    }
    if (i != s.size()) return false;
  }
  *micros = (days * 86400 + seconds_of_day - offset_seconds) * 1000000 + fraction;
  return true;
}

class JsonDecoder final : public RecordDecoder {
 public:
  JsonDecoder(std::shared_ptr<arrow::Schema> schema, const DecoderOptions& options)
      : RecordDecoder(std::move(schema)), options_(options) {}

  arrow::Status Init() {
    for (const auto& field : schema_->fields()) {
      columns_.push_back(internal::MakeColumn(field, options_.pool));
      top_.push_back(columns_.back().get());
    }
    for (int i = 0; i < static_cast<int>(top_.size()); ++i) top_names_[top_[i]->field->name()] = i;
    for (auto& c : columns_) {
      IndexStructs(c.get());
      ARROW_RETURN_NOT_OK(internal::ResetColumn(c.get()));
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Decode(
      std::span<const std::string_view> records) override {
    const int64_t n = static_cast<int64_t>(records.size());
    for (int64_t i = 0; i < n; ++i) {
      arrow::Status st = DecodeRecord(records[i]);
      if (!st.ok()) {
        for (auto& c : columns_) ARROW_RETURN_NOT_OK(internal::ResetColumn(c.get()));
        return arrow::Status::Invalid("record ", i, ": ", st.message());
      }
    }
    std::vector<std::shared_ptr<arrow::ArrayData>> arrays;
    for (auto& c : columns_) {
      ARROW_ASSIGN_OR_RAISE(auto data, internal::FinishColumn(c.get()));
      arrays.push_back(std::move(data));
    }
    return arrow::RecordBatch::Make(schema_, n, std::move(arrays));
  }

 private:
  using NameIndex = std::unordered_map<std::string, int>;

  void IndexStructs(Column* c) {
    if (c->kind == ColumnKind::kStruct) {
      auto& index = struct_names_[c];
      for (int i = 0; i < static_cast<int>(c->children.size()); ++i) {
        index[c->children[i]->field->name()] = i;
      }
    }
    for (auto& child : c->children) IndexStructs(child.get());
  }

  arrow::Status DecodeRecord(std::string_view text) {
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return arrow::Status::Invalid("not valid JSON");
    if (!doc.is_object()) return arrow::Status::Invalid("a JSON record must be an object, got ", Abbrev(doc));
    return AppendObject(top_, top_names_, doc, "", 0);
  }

  arrow::Status AppendObject(const std::vector<Column*>& cols, const NameIndex& names, const json& obj,
                             const std::string& prefix, int depth) {
    if (depth > options_.max_depth) return arrow::Status::Invalid("nesting deeper than ", options_.max_depth);
    std::vector<const json*> values(cols.size(), nullptr);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      auto found = names.find(it.key());
      if (found == names.end()) {
        return arrow::Status::Invalid("unknown column '", prefix.empty() ? it.key() : prefix + "." + it.key(),
                                      "'");
      }
      values[found->second] = &it.value();
    }
    for (size_t i = 0; i < cols.size(); ++i) {
      Column* c = cols[i];
      std::string path = prefix.empty() ? c->field->name() : prefix + "." + c->field->name();
      if (values[i] == nullptr || values[i]->is_null()) {
        if (!c->nullable) return ValueError(path, "NOT NULL column has no value");
        ARROW_RETURN_NOT_OK(internal::AppendNull(c));
        continue;
      }
      ARROW_RETURN_NOT_OK(AppendValue(c, *values[i], path, depth));
    }
    return arrow::Status::OK();
  }

  arrow::Result<int64_t> GetInt(const json& v, const std::string& path, int64_t min, int64_t max) {
    int64_t out;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return ValueError(path, "value " + v.dump() + " out of range");
      out = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      out = v.get<int64_t>();
    } else if (v.is_string()) {
      // Protobuf's JSON mapping writes 64-bit integers as strings.
      const std::string& s = v.get_ref<const std::string&>();
      size_t pos = 0;
      try {
        out = std::stoll(s, &pos);
      } catch (...) {
        pos = 0;
      }
      if (pos == 0 || pos != s.size()) return ValueError(path, "expected an integer, got " + Abbrev(v));
    } else {
      return ValueError(path, "expected an integer, got " + Abbrev(v));
    }
    if (out < min || out > max) return ValueError(path, "value " + std::to_string(out) + " out of range");
    return out;
  }

  arrow::Result<double> GetDouble(const json& v, const std::string& path) {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s == "NaN") return std::nan("");
      if (s == "Infinity") return HUGE_VAL;
      if (s == "-Infinity") return -HUGE_VAL;
    }
    return ValueError(path, "expected a number, got " + Abbrev(v));
  }

  arrow::Status AppendValue(Column* c, const json& v, const std::string& path, int depth) {
    switch (c->type_id) {
      case arrow::Type::BOOL:
        if (!v.is_boolean()) return ValueError(path, "expected true/false, got " + Abbrev(v));
        return c->AppendBool(v.get<bool>());
      case arrow::Type::INT8: {
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT8_MIN, INT8_MAX));
        return c->AppendFixed<int8_t>(static_cast<int8_t>(x));
      }
      case arrow::Type::INT16: {
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT16_MIN, INT16_MAX));
        return c->AppendFixed<int16_t>(static_cast<int16_t>(x));
      }
      case arrow::Type::INT32: {
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT32_MIN, INT32_MAX));
        return c->AppendFixed<int32_t>(static_cast<int32_t>(x));
      }
      case arrow::Type::INT64: {
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT64_MIN, INT64_MAX));
        return c->AppendFixed<int64_t>(x);
      }
      case arrow::Type::DATE32: {
        if (v.is_string()) {
          const std::string& s = v.get_ref<const std::string&>();
          size_t i = 0;
          int64_t days;
          if (!ParseDate(s, i, &days) || i != s.size()) {
            return ValueError(path, "expected a date YYYY-MM-DD, got " + Abbrev(v));
          }
          return c->AppendFixed<int32_t>(static_cast<int32_t>(days));
        }
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT32_MIN, INT32_MAX));
        return c->AppendFixed<int32_t>(static_cast<int32_t>(x));
      }
      case arrow::Type::TIMESTAMP: {
        if (v.is_string()) {
          bool tz = !arrow::internal::checked_cast<const arrow::TimestampType&>(*c->field->type())
                         .timezone()
                         .empty();
          int64_t micros;
          if (ParseTimestamp(v.get_ref<const std::string&>(), tz, &micros)) {
            return c->AppendFixed<int64_t>(micros);
          }
          auto as_int = GetInt(v, path, INT64_MIN, INT64_MAX);
          if (as_int.ok()) return c->AppendFixed<int64_t>(*as_int);
          return ValueError(path, std::string("expected microseconds or an ISO-8601 timestamp") +
                                      (tz ? "" : " without time zone") + ", got " + Abbrev(v));
        }
        ARROW_ASSIGN_OR_RAISE(auto x, GetInt(v, path, INT64_MIN, INT64_MAX));
        return c->AppendFixed<int64_t>(x);
      }
      case arrow::Type::FLOAT: {
        ARROW_ASSIGN_OR_RAISE(double d, GetDouble(v, path));
        return c->AppendFixed<float>(static_cast<float>(d));
      }
      case arrow::Type::DOUBLE: {
        ARROW_ASSIGN_OR_RAISE(double d, GetDouble(v, path));
        return c->AppendFixed<double>(d);
      }
      case arrow::Type::STRING: {
        if (!v.is_string()) return ValueError(path, "expected a string, got " + Abbrev(v));
        const std::string& s = v.get_ref<const std::string&>();
        return c->AppendBytes(reinterpret_cast<const uint8_t*>(s.data()), static_cast<int64_t>(s.size()));
      }
      case arrow::Type::BINARY: {
        std::optional<std::string> bytes;
        if (v.is_string()) bytes = DecodeBase64(v.get_ref<const std::string&>());
        if (!bytes) return ValueError(path, "expected base64 text, got " + Abbrev(v));
        return c->AppendBytes(reinterpret_cast<const uint8_t*>(bytes->data()),
                              static_cast<int64_t>(bytes->size()));
      }
      case arrow::Type::DECIMAL128: {
        std::string text;
        if (v.is_string()) {
          text = v.get<std::string>();
        } else if (v.is_number()) {
          text = v.dump();
        } else {
          return ValueError(path, "expected decimal text or a number, got " + Abbrev(v));
        }
        arrow::Status st = internal::AppendDecimalText(c, text);
        if (!st.ok()) return ValueError(path, st.message());
        return arrow::Status::OK();
      }
      case arrow::Type::LIST: {
        if (!v.is_array()) return ValueError(path, "expected an array, got " + Abbrev(v));
        Column* element = c->children[0].get();
        for (const auto& item : v) {
          if (item.is_null()) {
            if (!element->nullable) return ValueError(path, "array element is null but elements are NOT NULL");
            ARROW_RETURN_NOT_OK(internal::AppendNull(element));
          } else {
            ARROW_RETURN_NOT_OK(AppendValue(element, item, path, depth + 1));
          }
        }
        return c->CloseList();
      }
      case arrow::Type::MAP: {
        Column* key = c->children[0].get();
        Column* value = c->children[1].get();
        auto append_value = [&](const json& item) -> arrow::Status {
          if (item.is_null()) {
            if (!value->nullable) return ValueError(path, "map value is null but values are NOT NULL");
            return internal::AppendNull(value);
          }
          return AppendValue(value, item, path + ".value", depth + 1);
        };
        if (v.is_object()) {
          for (auto it = v.begin(); it != v.end(); ++it) {
            ARROW_RETURN_NOT_OK(AppendMapKey(key, it.key(), path + ".key"));
            ARROW_RETURN_NOT_OK(append_value(it.value()));
          }
        } else if (v.is_array()) {
          for (const auto& entry : v) {
            if (!entry.is_object() || !entry.contains("key") || entry["key"].is_null()) {
              return ValueError(path, "map entries must be objects with a non-null \"key\", got " + Abbrev(entry));
            }
            ARROW_RETURN_NOT_OK(AppendValue(key, entry["key"], path + ".key", depth + 1));
            ARROW_RETURN_NOT_OK(append_value(entry.contains("value") ? entry["value"] : json()));
          }
        } else {
          return ValueError(path, "expected an object or an array of {key, value}, got " + Abbrev(v));
        }
        return c->CloseList();
      }
      case arrow::Type::STRUCT: {
        if (!v.is_object()) return ValueError(path, "expected an object, got " + Abbrev(v));
        std::vector<Column*> children;
        for (auto& child : c->children) children.push_back(child.get());
        ARROW_RETURN_NOT_OK(AppendObject(children, struct_names_.at(c), v, path, depth + 1));
        return c->AppendValid();
      }
      default:
        return ValueError(path, "type " + c->field->type()->ToString() + " is not supported");
    }
  }

  // JSON object keys are strings; convert them to the key column's type.
  arrow::Status AppendMapKey(Column* key, const std::string& text, const std::string& path) {
    switch (key->type_id) {
      case arrow::Type::STRING:
      case arrow::Type::BINARY:
        return key->AppendBytes(reinterpret_cast<const uint8_t*>(text.data()),
                                static_cast<int64_t>(text.size()));
      case arrow::Type::BOOL:
        if (text == "true" || text == "false") return key->AppendBool(text == "true");
        return ValueError(path, "map key '" + text + "' is not true/false");
      default:
        return AppendValue(key, json(text), path, 0);
    }
  }

  DecoderOptions options_;
  std::vector<std::unique_ptr<Column>> columns_;
  std::vector<Column*> top_;
  NameIndex top_names_;
  std::unordered_map<const Column*, NameIndex> struct_names_;
};

}  // namespace

arrow::Result<std::unique_ptr<RecordDecoder>> RecordDecoder::MakeJson(
    std::shared_ptr<arrow::Schema> table_schema, const DecoderOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateTableSchema(*table_schema));
  auto decoder = std::make_unique<JsonDecoder>(std::move(table_schema), options);
  ARROW_RETURN_NOT_OK(decoder->Init());
  return decoder;
}

}  // namespace arrow_zerobus::emulator
