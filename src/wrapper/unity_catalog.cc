// Unity Catalog tables API -> descriptor: parse each column's type_text into the Arrow type the
// column holds, then generate the descriptor with the same mapping as for Arrow batches
// (DescriptorFromArrowSchema), so a batch bound to it writes what the table expects.
#include <algorithm>
#include <string>
#include <string_view>

#include <arrow/type.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/delta_types.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "common/http_client.h"
#include "wrapper/wrapper_internal.h"

namespace arrow_zerobus {

namespace {

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
  return ParseDeltaTypeText(type_text);
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

namespace internal {

arrow::Result<std::shared_ptr<arrow::Schema>> FetchUnityCatalogTableSchema(
    const UnityCatalogOptions& options) {
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
  return ArrowSchemaFromUnityCatalogTable(response->body);
}

}  // namespace internal

arrow::Result<DescriptorProto> FetchUnityCatalogDescriptor(const UnityCatalogOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto schema, internal::FetchUnityCatalogTableSchema(options));
  auto descriptor = DescriptorFromArrowSchema(*schema);
  if (!descriptor.ok()) {
    return ConversionError("the columns of Unity Catalog table '" + options.table_name +
                           "' have no descriptor: " + descriptor.status().message());
  }
  return descriptor;
}

}  // namespace arrow_zerobus
