// Unity Catalog tables API -> descriptor: parse each column's type_text into the Arrow type the
// column holds, then generate the descriptor with the same mapping as for Arrow batches
// (DescriptorFromArrowSchema), so a batch bound to it writes what the table expects.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include <arrow/type.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "auth/http_internal.h"

namespace arrow_zerobus {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Recursive-descent parser over one type text.
class TypeTextParser {
 public:
  explicit TypeTextParser(std::string_view text) : text_(text) {}

  arrow::Result<std::shared_ptr<arrow::DataType>> ParseAll() {
    ARROW_ASSIGN_OR_RAISE(auto type, ParseType(0));
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected '" + std::string(text_.substr(pos_)) + "'");
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
    if (name.empty()) return Error("expected a field name");
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
    if (word.empty()) return Error("expected a type");
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
      return std::static_pointer_cast<arrow::DataType>(std::make_shared<arrow::MapType>(
          arrow::field("key", key, false), arrow::field("value", value)));
    }
    if (word == "struct") {
      ARROW_RETURN_NOT_OK(Expect('<'));
      arrow::FieldVector fields;
      if (!Accept('>')) {
        do {
          ARROW_ASSIGN_OR_RAISE(std::string name, FieldName());
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
                     ") needs 1 <= precision <= 38 and scale <= precision");
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
    if (word == "boolean") return arrow::boolean();
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
    return Error("unsupported type '" + word + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// A short, secret-free description of an error answer ({"error_code", "message"} in Databricks
// APIs).
std::string DescribeErrorBody(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string out;
  if (j.is_object()) {
    if (j.contains("error_code") && j["error_code"].is_string()) {
      out += j["error_code"].get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) {
      if (!out.empty()) out += ": ";
      out += j["message"].get<std::string>();
    }
  }
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::DataType>> ArrowTypeFromTypeText(std::string_view type_text) {
  return TypeTextParser(type_text).ParseAll();
}

arrow::Result<std::shared_ptr<arrow::Schema>> ArrowSchemaFromUnityCatalogTable(
    std::string_view table_json) {
  auto j = nlohmann::json::parse(table_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return ConversionError("Unity Catalog table answer is not a JSON object");
  }
  if (!j.contains("columns") || !j["columns"].is_array() || j["columns"].empty()) {
    return ConversionError("Unity Catalog table answer has no columns[]");
  }
  struct Column {
    int64_t position;
    std::shared_ptr<arrow::Field> field;
  };
  std::vector<Column> columns;
  int64_t index = 0;
  for (const auto& c : j["columns"]) {
    const std::string where = "Unity Catalog column " + std::to_string(index);
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) {
      return ConversionError(where + " has no name");
    }
    const std::string name = c["name"].get<std::string>();
    std::string type_text;
    if (c.contains("type_text") && c["type_text"].is_string()) {
      type_text = c["type_text"].get<std::string>();
    } else if (c.contains("type_name") && c["type_name"].is_string()) {
      type_text = c["type_name"].get<std::string>();  // enough for primitive types
    } else {
      return ConversionError("Unity Catalog column '" + name + "' has no type_text");
    }
    auto type = ArrowTypeFromTypeText(type_text);
    if (!type.ok()) {
      return ConversionError("Unity Catalog column '" + name + "': " + type.status().message());
    }
    bool nullable = true;
    if (c.contains("nullable")) {
      if (!c["nullable"].is_boolean()) {
        return ConversionError("Unity Catalog column '" + name + "': nullable is not a boolean");
      }
      nullable = c["nullable"].get<bool>();
    }
    int64_t position = index;
    if (c.contains("position")) {
      if (!c["position"].is_number_integer()) {
        return ConversionError("Unity Catalog column '" + name + "': position is not an integer");
      }
      position = c["position"].get<int64_t>();
    }
    columns.push_back({position, arrow::field(name, *type, nullable)});
    ++index;
  }
  std::stable_sort(columns.begin(), columns.end(),
                   [](const Column& a, const Column& b) { return a.position < b.position; });
  arrow::FieldVector fields;
  for (auto& c : columns) fields.push_back(std::move(c.field));
  return arrow::schema(std::move(fields));
}

arrow::Result<DescriptorProto> FetchUnityCatalogDescriptor(const UnityCatalogOptions& options) {
  if (options.unity_catalog_url.empty()) {
    return ConfigurationError("unity_catalog_url is required to read the table's schema");
  }
  if (!options.headers_provider) {
    return ConfigurationError("a headers provider is required to read the table's schema");
  }
  ARROW_ASSIGN_OR_RAISE(Headers headers, options.headers_provider->GetHeaders());
  internal::HttpRequest request;
  request.url = TrimSlash(options.unity_catalog_url) + "/api/2.1/unity-catalog/tables/" +
                internal::FormEncode(options.table_name);
  request.post = false;
  request.headers = std::move(headers);
  request.headers.emplace_back("accept", "application/json");
  request.timeout = options.timeout;
  request.ca_file = options.ca_file;
  auto response = internal::HttpCall(request);
  if (!response.ok()) {
    return MakeError(ErrorKind::kConnection, true,
                     "reading Unity Catalog table '" + options.table_name +
                         "': " + response.status().message());
  }
  const long status = response->status;
  const std::string what = "Unity Catalog table '" + options.table_name + "' (HTTP " +
                           std::to_string(status) + ")";
  const std::string detail = DescribeErrorBody(response->body);
  const std::string suffix = detail.empty() ? "" : ": " + detail;
  if (status == 401 || status == 403) {
    options.headers_provider->Invalidate();
    return AuthenticationError("not allowed to read " + what + suffix);
  }
  if (status == 404) {
    return ConfigurationError("table_name: " + what + " does not exist" + suffix);
  }
  if (status >= 400 && status < 500) {
    return ConfigurationError("table_name: " + what + " was refused" + suffix);
  }
  if (status != 200) {
    return MakeError(ErrorKind::kConnection, true, "reading " + what + " failed" + suffix);
  }
  ARROW_ASSIGN_OR_RAISE(auto schema, ArrowSchemaFromUnityCatalogTable(response->body));
  auto descriptor = DescriptorFromArrowSchema(*schema);
  if (!descriptor.ok()) {
    return ConversionError("the columns of " + what +
                           " have no descriptor: " + descriptor.status().message());
  }
  return descriptor;
}

}  // namespace arrow_zerobus
