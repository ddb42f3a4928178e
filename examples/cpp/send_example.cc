// send_example: a program using the installed arrow_zerobus library (find_package(ArrowZerobus)).
// Builds an Arrow RecordBatch of IoT readings in code, sends it to one Zerobus table with
// ZerobusWrapper::SendBatch and prints the TransmissionResult.
//
//   ZEROBUS_CLIENT_SECRET=... send_example --endpoint URL --table CATALOG.SCHEMA.TABLE \
//       --unity-catalog-url URL --client-id ID [--rows N]
//
// Every flag may come from the environment instead (ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME,
// UNITY_CATALOG_URL, ZEROBUS_CLIENT_ID, and the other variables of docs/configuration.md); the
// secret comes only from ZEROBUS_CLIENT_SECRET. Exit code 0 only if every row landed; 1 when a
// row failed or the send could not be made; 2 for bad arguments.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/api.h>
#include <arrow_zerobus/arrow_zerobus.h>

namespace {

constexpr int kUsageError = 2;

void Usage(std::ostream& out) {
  out << "usage: ZEROBUS_CLIENT_SECRET=... send_example --endpoint URL --table CATALOG.SCHEMA.TABLE\n"
         "           --unity-catalog-url URL --client-id ID [--rows N]\n"
         "(flags default to ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME, UNITY_CATALOG_URL,\n"
         " ZEROBUS_CLIENT_ID)\n";
}

// `rows` readings: id (NOT NULL), ts (NOT NULL, one second apart), site, temperature (every
// tenth value null).
arrow::Result<std::shared_ptr<arrow::RecordBatch>> MakeReadings(int64_t rows) {
  auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64(), /*nullable=*/false),
      arrow::field("ts", ts_type, /*nullable=*/false),
      arrow::field("site", arrow::utf8()),
      arrow::field("temperature", arrow::float64()),
  });
  const std::vector<std::string> sites = {"berlin", "lyon", "oslo", "porto"};
  const int64_t start_us = 1'793'491'200'000'000;  // 2026-11-01T00:00:00Z

  arrow::Int64Builder id;
  arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
  arrow::StringBuilder site;
  arrow::DoubleBuilder temperature;
  for (int64_t i = 0; i < rows; ++i) {
    ARROW_RETURN_NOT_OK(id.Append(i));
    ARROW_RETURN_NOT_OK(ts.Append(start_us + i * 1'000'000));
    ARROW_RETURN_NOT_OK(site.Append(sites[i % sites.size()]));
    if (i % 10 == 3) {
      ARROW_RETURN_NOT_OK(temperature.AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(temperature.Append(18.0 + static_cast<double>(i % 50) / 10));
    }
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(4);
  ARROW_ASSIGN_OR_RAISE(columns[0], id.Finish());
  ARROW_ASSIGN_OR_RAISE(columns[1], ts.Finish());
  ARROW_ASSIGN_OR_RAISE(columns[2], site.Finish());
  ARROW_ASSIGN_OR_RAISE(columns[3], temperature.Finish());
  return arrow::RecordBatch::Make(schema, rows, std::move(columns));
}

// Sends the batch; returns whether every row landed.
arrow::Result<bool> Send(arrow_zerobus::WrapperConfiguration config, int64_t rows) {
  ARROW_ASSIGN_OR_RAISE(auto batch, MakeReadings(rows));
  ARROW_ASSIGN_OR_RAISE(auto wrapper, arrow_zerobus::ZerobusWrapper::Make(std::move(config)));
  ARROW_ASSIGN_OR_RAISE(auto result, wrapper.SendBatch(*batch));  // waits for durable acks
  arrow::Status shutdown = wrapper.Shutdown();

  std::cout << result.ToString() << "\n";
  constexpr size_t kShownFailures = 10;
  for (size_t i = 0; i < result.failed_rows.size() && i < kShownFailures; ++i) {
    const auto& row = result.failed_rows[i];
    std::cout << "failed row " << row.row_index << ": " << row.message << "\n";
  }
  if (result.failed_rows.size() > kShownFailures) {
    std::cout << "... and " << result.failed_rows.size() - kShownFailures << " more failed rows\n";
  }
  std::cout << "total_rows=" << result.total_rows << " successful=" << result.successful_count
            << " failed=" << result.failed_count << "\n";
  ARROW_RETURN_NOT_OK(shutdown);
  return result.failed_count == 0 && result.successful_count == batch->num_rows();
}

}  // namespace

int main(int argc, char** argv) {
  // Everything documented in docs/configuration.md may come from the environment, the secret
  // included (ZEROBUS_CLIENT_SECRET); flags override the endpoint, table, URL and client id.
  auto from_env = arrow_zerobus::WrapperConfiguration::FromEnvironment();
  if (!from_env.ok()) {
    std::cerr << "send_example: " << from_env.status().ToString() << "\n";
    return kUsageError;
  }
  arrow_zerobus::WrapperConfiguration config = std::move(from_env).ValueOrDie();
  int64_t rows = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      Usage(std::cout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "send_example: " << flag << " needs a value (or is unknown)\n";
      Usage(std::cerr);
      return kUsageError;
    }
    const std::string value = argv[++i];
    if (flag == "--endpoint") {
      config.endpoint = value;
    } else if (flag == "--table") {
      config.table_name = value;
    } else if (flag == "--unity-catalog-url") {
      config.unity_catalog_url = value;
    } else if (flag == "--client-id") {
      config.client_id = value;
    } else if (flag == "--rows") {
      char* end = nullptr;
      rows = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || rows <= 0) {
        std::cerr << "send_example: --rows needs a positive integer, got '" << value << "'\n";
        return kUsageError;
      }
    } else {
      std::cerr << "send_example: unknown flag " << flag << "\n";
      Usage(std::cerr);
      return kUsageError;
    }
  }
  if (config.endpoint.empty() || config.table_name.empty()) {
    std::cerr << "send_example: the endpoint and the table are required\n";
    Usage(std::cerr);
    return kUsageError;
  }
  if (!config.client_secret || config.client_secret->empty()) {
    std::cerr << "send_example: set ZEROBUS_CLIENT_SECRET\n";
    return kUsageError;
  }

  std::cout << "sending " << rows << " rows to " << config.table_name << " at " << config.endpoint
            << " (arrow_zerobus " << arrow_zerobus::kVersion << ")" << std::endl;
  auto landed = Send(std::move(config), rows);
  if (!landed.ok()) {
    std::cerr << "send_example: " << landed.status().ToString() << "\n";
    return 1;
  }
  return *landed ? 0 : 1;
}
