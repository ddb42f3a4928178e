// Unity Catalog / Delta type text <-> Arrow types (one parser and one renderer for the wrapper,
// the DDL helpers and the emulator).
#include "arrow_zerobus/delta_types.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <unordered_set>

#include <arrow/type.h>

#include "arrow_zerobus/errors.h"
#include "schema/type_support_internal.h"

namespace arrow_zerobus {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Spark / Databricks type names this library cannot hold: named as unsupported rather than
// unknown, so a user sees the column type is real but not streamable.
bool IsKnownUnsupported(std::string_view word) {
  return word == "interval" || word == "void" || word == "object" || word == "geometry" ||
         word == "geography";
}

// Recursive-descent parser over one type text.
class TypeTextParser {
 public:
  TypeTextParser(std::string_view text, const TypeTextOptions& options)
      : text_(text), options_(options) {}

  arrow::Result<std::shared_ptr<arrow::DataType>> ParseAll() {
    ARROW_ASSIGN_OR_RAISE(auto type, ParseType(0));
    SkipSpace();
    if (pos_ != text_.size()) {
      return Error("unexpected text after the type: '" + std::string(text_.substr(pos_)) + "'");
    }
    return type;
  }

 private:
  static constexpr int kMaxDepth = 100;

  arrow::Status Error(const std::string& what) const {
    return ConversionError("type text '" + std::string(text_) + "' at position " +
                           std::to_string(pos_) + ": " + what);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool Accept(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  arrow::Status Expect(char c) {
    if (!Accept(c)) return Error(std::string("expected '") + c + "'");
    return arrow::Status::OK();
  }

  // [A-Za-z0-9_]+ (empty when none).
  std::string Word() {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  // A keyword at the current position (case-insensitive, whole word); consumed when it matches.
  bool AcceptKeyword(std::string_view keyword) {
    const size_t save = pos_;
    if (Lower(Word()) == keyword) return true;
    pos_ = save;
    return false;
  }

  arrow::Result<int64_t> Integer() {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (start == pos_ || pos_ - start > 9) return Error("expected a number");
    return std::stoll(std::string(text_.substr(start, pos_ - start)));
  }

  // A struct field name: a word or a `backquoted` name.
  arrow::Result<std::string> FieldName() {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '`') {
      ++pos_;
      std::string name;
      while (pos_ < text_.size()) {
        if (text_[pos_] == '`') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '`') {  // `` escapes a backquote
            name += '`';
            pos_ += 2;
            continue;
          }
          ++pos_;
          return name;
        }
        name += text_[pos_++];
      }
      return Error("unterminated `name`");
    }
    std::string name = Word();
    if (name.empty()) return Error(options_.strict_names ? "bad struct field name ''"
                                                         : "expected a field name");
    return name;
  }

  // COMMENT 'text' after a struct field: skipped.
  arrow::Status SkipComment() {
    const size_t save = pos_;
    if (!AcceptKeyword("comment")) {
      pos_ = save;
      return arrow::Status::OK();
    }
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return Error("expected a quoted comment");
    }
    const char quote = text_[pos_++];
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') ++pos_;
      ++pos_;
    }
    if (pos_ >= text_.size()) return Error("unterminated comment");
    ++pos_;
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::DataType>> ParseType(int depth) {
    if (depth > kMaxDepth) return Error("nesting deeper than " + std::to_string(kMaxDepth));
    const size_t start = pos_;
    const std::string word = Lower(Word());
    if (word.empty()) return Error("expected a type name");
    if (word == "array") {
      ARROW_RETURN_NOT_OK(Expect('<'));
      ARROW_ASSIGN_OR_RAISE(auto element, ParseType(depth + 1));
      ARROW_RETURN_NOT_OK(Expect('>'));
      return arrow::list(arrow::field("element", element));
    }
    if (word == "map") {
      ARROW_RETURN_NOT_OK(Expect('<'));
      ARROW_ASSIGN_OR_RAISE(auto key, ParseType(depth + 1));
      ARROW_RETURN_NOT_OK(Expect(','));
      ARROW_ASSIGN_OR_RAISE(auto value, ParseType(depth + 1));
      ARROW_RETURN_NOT_OK(Expect('>'));
      if (options_.strict_names && (key->id() == arrow::Type::LIST ||
                                    key->id() == arrow::Type::MAP ||
                                    key->id() == arrow::Type::STRUCT)) {
        return Error("map keys must be a primitive type");
      }
      return std::static_pointer_cast<arrow::DataType>(std::make_shared<arrow::MapType>(
          arrow::field("key", key, false), arrow::field("value", value)));
    }
    if (word == "struct") return ParseStructBody(depth);
    if (word == "decimal" || word == "dec" || word == "numeric") {
      int64_t precision = 10, scale = 0;  // Spark's default DECIMAL
      if (Accept('(')) {
        ARROW_ASSIGN_OR_RAISE(precision, Integer());
        if (Accept(',')) {
          ARROW_ASSIGN_OR_RAISE(scale, Integer());
        }
        ARROW_RETURN_NOT_OK(Expect(')'));
      }
      if (precision < 1 || precision > 38 || scale > precision) {
        return Error("decimal(" + std::to_string(precision) + "," + std::to_string(scale) +
                     "): precision must be 1..38 and scale 0..precision");
      }
      return arrow::decimal128(static_cast<int32_t>(precision), static_cast<int32_t>(scale));
    }
    if (word == "varchar" || word == "char") {
      if (Accept('(')) {
        ARROW_RETURN_NOT_OK(Integer().status());
        ARROW_RETURN_NOT_OK(Expect(')'));
      }
      return arrow::utf8();
    }
    if (word == "boolean" || word == "bool") return arrow::boolean();
    if (word == "tinyint" || word == "byte") return arrow::int8();
    if (word == "smallint" || word == "short") return arrow::int16();
    if (word == "int" || word == "integer") return arrow::int32();
    if (word == "bigint" || word == "long") return arrow::int64();
    if (word == "float" || word == "real") return arrow::float32();
    if (word == "double") return arrow::float64();
    if (word == "string") return arrow::utf8();
    if (word == "binary") return arrow::binary();
    if (word == "date") return arrow::date32();
    if (word == "timestamp" || word == "timestamp_ltz") {
      return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    }
    if (word == "timestamp_ntz") return arrow::timestamp(arrow::TimeUnit::MICRO);
    if (word == "variant") return arrow::utf8();  // JSON text (type-mapping.md)
    pos_ = start;
    return Error((IsKnownUnsupported(word) ? "unsupported type '" : "unknown type '") + word +
                 "'");
  }

  // After "struct": <name[:] type [NOT NULL] [COMMENT '...'], ...>.
  arrow::Result<std::shared_ptr<arrow::DataType>> ParseStructBody(int depth) {
    ARROW_RETURN_NOT_OK(Expect('<'));
    arrow::FieldVector fields;
    std::unordered_set<std::string> names;
    if (!Accept('>')) {
      do {
        ARROW_ASSIGN_OR_RAISE(std::string name, FieldName());
        if (options_.strict_names) {
          if (!internal::IsValidFieldName(name)) {
            return Error("bad struct field name '" + name + "'");
          }
          if (!names.insert(Lower(name)).second) {
            return Error("duplicate struct field '" + name + "'");
          }
        }
        Accept(':');  // Spark writes "a:int"; DDL style "a int" has no colon
        ARROW_ASSIGN_OR_RAISE(auto type, ParseType(depth + 1));
        bool nullable = true;
        const size_t save = pos_;
        if (AcceptKeyword("not")) {
          if (!AcceptKeyword("null")) return Error("expected NOT NULL");
          nullable = false;
        } else {
          pos_ = save;
        }
        ARROW_RETURN_NOT_OK(SkipComment());
        fields.push_back(arrow::field(std::move(name), std::move(type), nullable));
      } while (Accept(','));
      ARROW_RETURN_NOT_OK(Expect('>'));
    }
    if (fields.empty()) return Error("a struct needs at least one field");
    return arrow::struct_(std::move(fields));
  }

  std::string_view text_;
  const TypeTextOptions& options_;
  size_t pos_ = 0;
};

}  // namespace

arrow::Result<std::shared_ptr<arrow::DataType>> ParseDeltaTypeText(std::string_view text,
                                                                   const TypeTextOptions& options) {
  return TypeTextParser(text, options).ParseAll();
}

arrow::Result<std::string> DeltaTypeText(const std::shared_ptr<arrow::DataType>& declared,
                                         const std::string& path) {
  if (internal::IsJsonExtension(*declared)) return std::string("variant");
  const auto type = internal::ValueType(declared);
  using T = arrow::Type;
  switch (type->id()) {
    case T::BOOL: return std::string("boolean");
    case T::INT8: return std::string("tinyint");
    case T::INT16:
    case T::UINT8: return std::string("smallint");
    case T::INT32:
    case T::UINT16: return std::string("int");
    case T::INT64:
    case T::UINT32:
    case T::UINT64: return std::string("bigint");
    case T::HALF_FLOAT:
    case T::FLOAT: return std::string("float");
    case T::DOUBLE: return std::string("double");
    case T::STRING:
    case T::LARGE_STRING:
    case T::STRING_VIEW: return std::string("string");
    case T::BINARY:
    case T::LARGE_BINARY:
    case T::BINARY_VIEW:
    case T::FIXED_SIZE_BINARY: return std::string("binary");
    case T::DATE32:
    case T::DATE64: return std::string("date");
    case T::TIMESTAMP:
      return std::string(static_cast<const arrow::TimestampType&>(*type).timezone().empty()
                             ? "timestamp_ntz"
                             : "timestamp");
    case T::DECIMAL32:
    case T::DECIMAL64:
    case T::DECIMAL128:
    case T::DECIMAL256: {
      const auto& dec = static_cast<const arrow::DecimalType&>(*type);
      if (dec.precision() > 38) {
        return ConversionError("column '" + path + "' (" + type->ToString() +
                               "): Delta decimals hold at most 38 digits");
      }
      return "decimal(" + std::to_string(dec.precision()) + "," + std::to_string(dec.scale()) + ")";
    }
    case T::LIST:
    case T::LARGE_LIST:
    case T::LIST_VIEW:
    case T::LARGE_LIST_VIEW:
    case T::FIXED_SIZE_LIST: {
      ARROW_ASSIGN_OR_RAISE(auto element,
                            DeltaTypeText(internal::ListValueField(*type)->type(), path));
      return "array<" + element + ">";
    }
    case T::MAP: {
      const auto& map = static_cast<const arrow::MapType&>(*type);
      ARROW_ASSIGN_OR_RAISE(auto key, DeltaTypeText(map.key_type(), path + ".key"));
      ARROW_ASSIGN_OR_RAISE(auto value, DeltaTypeText(map.item_type(), path + ".value"));
      return "map<" + key + "," + value + ">";
    }
    case T::STRUCT: {
      std::string out = "struct<";
      for (int i = 0; i < type->num_fields(); ++i) {
        const auto& child = type->field(i);
        ARROW_ASSIGN_OR_RAISE(auto text, DeltaTypeText(child->type(), path + "." + child->name()));
        if (i > 0) out += ",";
        out += child->name() + ":" + text;
        if (!child->nullable()) out += " not null";
      }
      return out + ">";
    }
    default:
      return ConversionError("column '" + path + "' has unsupported type " + type->ToString());
  }
}

}  // namespace arrow_zerobus
