// zerobus-arrow: the command-line tool. Subcommands:
//   describe FILE   the Arrow schema and the protobuf descriptor (as .proto text) rows get
//   encode FILE     encodes every row, reports rows, bytes, throughput and per-row failures
//   send FILE       sends every row to a Zerobus table and reports, per row, what landed
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <arrow/api.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "arrow_zerobus/wrapper.h"
#include "input_file.h"

namespace {

using arrow_zerobus::RenderError;

int Fail(const arrow::Status& status) {
  std::cerr << "zerobus-arrow: " << RenderError(status) << "\n";
  return 1;
}

int Describe(const std::string& path, const std::string& message_name,
             const std::string& table_name, const std::string& declaration_out) {
  auto reader = arrow_zerobus::cli::OpenInputFile(path);
  if (!reader.ok()) return Fail(reader.status());
  const auto schema = (*reader)->schema();
  arrow_zerobus::DescriptorOptions options;
  options.message_name = message_name;
  auto descriptor = arrow_zerobus::DescriptorFromArrowSchema(*schema, options);
  if (!descriptor.ok()) return Fail(descriptor.status());
  std::cout << "# Arrow schema of " << path << "\n" << schema->ToString() << "\n\n"
            << "# Protobuf descriptor sent to Zerobus\n"
            << arrow_zerobus::DescriptorToProtoText(*descriptor);
  auto columns = arrow_zerobus::DeltaColumnsFromArrowSchema(*schema);
  if (!columns.ok()) return Fail(columns.status());
  std::cout << "\n# The Delta table the rows land in (create it before streaming)\n"
            << arrow_zerobus::CreateTableStatement(table_name, *columns) << ";\n";
  if (!declaration_out.empty()) {
    std::ofstream out(declaration_out);
    out << arrow_zerobus::TableDeclarationJson(*columns) << "\n";
    if (!out) return Fail(arrow::Status::IOError("cannot write '", declaration_out, "'"));
  }
  return 0;
}

int Encode(const std::string& path, int repeat, int max_errors) {
  auto reader = arrow_zerobus::cli::OpenInputFile(path);
  if (!reader.ok()) return Fail(reader.status());
  auto table = (*reader)->ToTable();
  if (!table.ok()) return Fail(table.status());
  auto encoder = arrow_zerobus::RecordBatchEncoder::Make((*table)->schema());
  if (!encoder.ok()) return Fail(encoder.status());
  arrow::TableBatchReader batches(**table);
  batches.set_chunksize(64 * 1024);
  auto all = batches.ToRecordBatches();
  if (!all.ok()) return Fail(all.status());

  int64_t rows = 0, records = 0, bytes = 0, failed = 0, chunks = 0, shown = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeat; ++r) {
    int64_t base = 0;
    for (const auto& batch : *all) {
      auto encoded = (*encoder)->Encode(*batch);
      if (!encoded.ok()) return Fail(encoded.status());
      rows += batch->num_rows();
      records += encoded->num_records();
      bytes += encoded->record_offsets.empty() ? 0 : encoded->record_offsets.back();
      chunks += static_cast<int64_t>(encoded->chunks.size());
      failed += static_cast<int64_t>(encoded->failed_rows.size());
      if (r == 0) {
        for (const auto& e : encoded->failed_rows) {
          if (shown++ < max_errors) std::cout << "row " << base + e.row << ": " << e.message << "\n";
        }
      }
      base += batch->num_rows();
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("rows %lld, encoded %lld, failed %lld, requests %lld, bytes %lld\n",
              static_cast<long long>(rows), static_cast<long long>(records),
              static_cast<long long>(failed), static_cast<long long>(chunks),
              static_cast<long long>(bytes));
  std::printf("encode: %.3f s, %.2f M rows/s, %.1f MB/s of protobuf rows (one core)\n", secs,
              rows / secs / 1e6, bytes / secs / 1e6);
  return 0;
}

struct SendOptions {
  std::string config_file;
  std::string endpoint, table, unity_catalog_url, client_id;
  int streams = 0;
  int64_t batch_rows = 64 * 1024;
  int max_errors = 20;
};

// Settings come from a YAML file or the environment (ZEROBUS_*, docs/configuration.md); flags
// override them. The client secret is never a flag: it stays out of shell history and `ps`.
arrow::Result<arrow_zerobus::WrapperConfiguration> SendConfiguration(const SendOptions& o) {
  ARROW_ASSIGN_OR_RAISE(auto config,
                        o.config_file.empty()
                            ? arrow_zerobus::WrapperConfiguration::FromEnvironment()
                            : arrow_zerobus::WrapperConfiguration::FromYamlFile(o.config_file));
  if (!o.endpoint.empty()) config.endpoint = o.endpoint;
  if (!o.table.empty()) config.table_name = o.table;
  if (!o.unity_catalog_url.empty()) config.unity_catalog_url = o.unity_catalog_url;
  if (!o.client_id.empty()) config.client_id = o.client_id;
  if (o.streams > 0) config.streams_per_table = o.streams;
  if (!config.application_name) config.application_name = "zerobus-arrow-cli";
  return config;
}

int Send(const std::string& path, const SendOptions& o) {
  auto config = SendConfiguration(o);
  if (!config.ok()) return Fail(config.status());
  auto wrapper = arrow_zerobus::ZerobusWrapper::Make(*config);
  if (!wrapper.ok()) return Fail(wrapper.status());
  auto reader = arrow_zerobus::cli::OpenInputFile(path);
  if (!reader.ok()) return Fail(reader.status());
  auto table = (*reader)->ToTable();
  if (!table.ok()) return Fail(table.status());
  arrow::TableBatchReader batches(**table);
  batches.set_chunksize(o.batch_rows);

  int64_t base = 0, rows = 0, ok_rows = 0, failed_rows = 0, bytes = 0, shown = 0;
  int batch_no = 0;
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<arrow::RecordBatch> batch;
  while (true) {
    if (auto st = batches.ReadNext(&batch); !st.ok()) return Fail(st);
    if (!batch) break;
    auto result = wrapper->SendBatch(*batch);
    if (!result.ok()) return Fail(result.status());
    std::printf("batch %d: rows %lld, landed %lld, failed %lld, attempts %d, %.1f ms\n",
                batch_no++, static_cast<long long>(result->total_rows),
                static_cast<long long>(result->successful_count),
                static_cast<long long>(result->failed_count), result->attempts,
                result->latency_ms.value_or(0));
    for (const auto& f : result->failed_rows) {
      // The message names the column, the row within the batch, and the value.
      if (shown++ < o.max_errors) {
        std::printf("  file row %lld: %s\n", static_cast<long long>(base + f.row_index),
                    f.message.c_str());
      }
    }
    rows += result->total_rows;
    ok_rows += result->successful_count;
    failed_rows += result->failed_count;
    bytes += result->batch_size_bytes;
    base += batch->num_rows();
  }
  const arrow::Status closed = wrapper->Shutdown();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto stats = wrapper->stats();
  std::printf("sent %lld rows to %s: %lld durable (acked), %lld failed; %lld retried, "
              "%lld possibly duplicated by replay\n",
              static_cast<long long>(rows), config->table_name.c_str(),
              static_cast<long long>(ok_rows), static_cast<long long>(failed_rows),
              static_cast<long long>(stats.rows_retried),
              static_cast<long long>(stats.replayed_records));
  std::printf("%.2f s, %.2f M rows/s, %.1f MB/s of protobuf rows\n", secs, rows / secs / 1e6,
              bytes / secs / 1e6);
  if (!closed.ok()) return Fail(closed);
  return failed_rows == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zerobus-arrow: Arrow data to Databricks Zerobus Ingest"};
  app.require_subcommand(1);
  std::string path, message_name = "ArrowRecord", table_name = "main.default.arrow_rows";
  std::string declaration_out;
  int repeat = 1, max_errors = 20;

  auto* describe = app.add_subcommand("describe", "Show the protobuf descriptor for a file's rows");
  describe->add_option("file", path, "Parquet or Arrow IPC file")->required();
  describe->add_option("--message-name", message_name, "Name of the root message");
  describe->add_option("--table", table_name, "Table name for the CREATE TABLE statement");
  describe->add_option("--declaration-out", declaration_out,
                       "Write the table as an emulator declaration (JSON) to this file");

  auto* encode = app.add_subcommand("encode", "Encode a file's rows and report throughput");
  encode->add_option("file", path, "Parquet or Arrow IPC file")->required();
  encode->add_option("--repeat", repeat, "Encode the data this many times")->check(CLI::PositiveNumber);
  encode->add_option("--max-errors", max_errors, "Row errors to print");

  SendOptions send_options;
  auto* send = app.add_subcommand(
      "send", "Send a file's rows to a Zerobus table (secret from ZEROBUS_CLIENT_SECRET)");
  send->add_option("file", path, "Parquet or Arrow IPC file")->required();
  send->add_option("--config", send_options.config_file,
                   "YAML configuration (default: ZEROBUS_* environment variables)");
  send->add_option("--endpoint", send_options.endpoint, "Zerobus endpoint URL");
  send->add_option("--table", send_options.table, "catalog.schema.table");
  send->add_option("--unity-catalog-url", send_options.unity_catalog_url,
                   "Workspace URL (OAuth token endpoint)");
  send->add_option("--client-id", send_options.client_id, "Service principal client id");
  send->add_option("--streams", send_options.streams, "Parallel streams to the table")
      ->check(CLI::PositiveNumber);
  send->add_option("--batch-rows", send_options.batch_rows, "Rows per send_batch call")
      ->check(CLI::PositiveNumber);
  send->add_option("--max-errors", send_options.max_errors, "Failed rows to print");

  CLI11_PARSE(app, argc, argv);
  if (send->parsed()) return Send(path, send_options);
  if (describe->parsed()) return Describe(path, message_name, table_name, declaration_out);
  if (encode->parsed()) return Encode(path, repeat, max_errors);
  return 2;
}
