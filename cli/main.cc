// zerobus-arrow: the command-line tool (docs/cli.md). Subcommands:
//   describe INPUT  the Arrow schema, the protobuf descriptor rows get, the Delta table
//   encode INPUT    encodes every row, reports throughput and per-row failures
//   send INPUT...   sends every row to a Zerobus table (a local emulator when no endpoint is set)
//   serve           the local Zerobus server (the emulator's options)
//   show TABLE_DIR  schema, row count and first rows of a local Delta table
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <arrow/api.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/schema.h"
#include "inputs.h"
#include "send_command.h"
#include "server/command.h"
#include "show_command.h"

namespace {

namespace cli = arrow_zerobus::cli;

int Fail(const arrow::Status& status) {
  const std::string text = arrow_zerobus::GetZerobusDetail(status)
                               ? arrow_zerobus::RenderError(status)
                               : status.message();
  std::cerr << "zerobus-arrow: " << text << "\n";
  return cli::kExitError;
}

// The first input of `arg` (a file, directory, glob or "-"), opened.
arrow::Result<std::unique_ptr<cli::InputReader>> OpenFirst(const std::string& arg,
                                                           const cli::InputOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto files, cli::ResolveInputs({arg}));
  return cli::OpenInput(files.front(), options);
}

int Describe(const std::string& path, const std::string& message_name,
             const std::string& table_name, const std::string& declaration_out) {
  auto reader = OpenFirst(path, cli::InputOptions{});
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

// Encodes batch by batch as the input is read (bounded memory); --repeat re-reads the input.
int Encode(const std::string& path, int repeat, int max_errors) {
  int64_t rows = 0, records = 0, bytes = 0, failed = 0, chunks = 0, shown = 0;
  double secs = 0;
  std::unique_ptr<arrow_zerobus::RecordBatchEncoder> encoder;
  for (int r = 0; r < repeat; ++r) {
    auto reader = OpenFirst(path, cli::InputOptions{});
    if (!reader.ok()) return Fail(reader.status());
    if (!encoder) {
      auto made = arrow_zerobus::RecordBatchEncoder::Make((*reader)->schema());
      if (!made.ok()) return Fail(made.status());
      encoder = std::move(*made);
    }
    int64_t base = 0;
    while (true) {
      auto batch = (*reader)->Next();
      if (!batch.ok()) return Fail(batch.status());
      if (!*batch) break;
      const auto start = std::chrono::steady_clock::now();
      auto encoded = encoder->Encode(**batch);
      secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!encoded.ok()) return Fail(encoded.status());
      rows += (*batch)->num_rows();
      records += encoded->num_records();
      bytes += encoded->record_offsets.empty() ? 0 : encoded->record_offsets.back();
      chunks += static_cast<int64_t>(encoded->chunks.size());
      failed += static_cast<int64_t>(encoded->failed_rows.size());
      if (r == 0) {
        for (const auto& e : encoded->failed_rows) {
          if (shown++ < max_errors) std::cout << "row " << base + e.row << ": " << e.message << "\n";
        }
      }
      base += (*batch)->num_rows();
    }
  }
  std::printf("rows %lld, encoded %lld, failed %lld, requests %lld, bytes %lld\n",
              static_cast<long long>(rows), static_cast<long long>(records),
              static_cast<long long>(failed), static_cast<long long>(chunks),
              static_cast<long long>(bytes));
  std::printf("encode: %.3f s, %.2f M rows/s, %.1f MB/s of protobuf rows (one core, reading "
              "excluded)\n",
              secs, secs > 0 ? rows / secs / 1e6 : 0.0, secs > 0 ? bytes / secs / 1e6 : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zerobus-arrow: Arrow data to Databricks Zerobus Ingest"};
  app.require_subcommand(1);
  std::string path, message_name = "ArrowRecord", table_name = "main.default.arrow_rows";
  std::string declaration_out;
  int repeat = 1, max_errors = 20;
  const std::string inputs_help =
      "Parquet, Arrow IPC file (.arrow) or stream (.arrows), CSV or JSON Lines; a file, a "
      "directory or a glob";

  auto* describe = app.add_subcommand("describe", "Show the protobuf descriptor for an input's rows");
  describe->add_option("input", path, inputs_help)->required();
  describe->add_option("--message-name", message_name, "Name of the root message");
  describe->add_option("--table", table_name, "Table name for the CREATE TABLE statement");
  describe->add_option("--declaration-out", declaration_out,
                       "Write the table as an emulator declaration (JSON) to this file");

  auto* encode = app.add_subcommand("encode", "Encode an input's rows and report throughput");
  encode->add_option("input", path, inputs_help)->required();
  encode->add_option("--repeat", repeat, "Encode the data this many times")->check(CLI::PositiveNumber);
  encode->add_option("--max-errors", max_errors, "Row errors to print");

  cli::SendCommandOptions so;
  auto* send = app.add_subcommand(
      "send", "Send the rows of the inputs to a Zerobus table (secret from ZEROBUS_CLIENT_SECRET)");
  send->add_option("inputs", so.inputs, inputs_help + "; - for an Arrow IPC stream on stdin")
      ->required();
  send->add_option("--config", so.config_file,
                   "YAML configuration (default: ZEROBUS_* environment variables)");
  send->add_option("--endpoint", so.endpoint,
                   "Zerobus endpoint URL (none anywhere: a local emulator, see --local-dir)");
  send->add_option("--table", so.table, "catalog.schema.table");
  send->add_option("--unity-catalog-url", so.unity_catalog_url, "Workspace URL (OAuth token endpoint)");
  send->add_option("--client-id", so.client_id, "Service principal client id");
  send->add_option("--local-dir", so.local_dir,
                   "Where the local emulator writes its tables when no endpoint is set")
      ->capture_default_str();
  send->add_option("--streams", so.streams, "Parallel streams to the table")->check(CLI::PositiveNumber);
  send->add_option("--transport", so.transport,
                   "protobuf (rows as protobuf, the default), json (rows as JSON) or arrow_flight "
                   "(Arrow record batches over Arrow Flight)")
      ->check(CLI::IsMember({"protobuf", "json", "arrow_flight"}, CLI::ignore_case));
  send->add_option("--ipc-compression", so.ipc_compression,
                   "none, lz4_frame or zstd: Arrow IPC body compression (arrow_flight only)")
      ->check(CLI::IsMember({"none", "lz4_frame", "zstd"}, CLI::ignore_case));
  send->add_option("--batch-rows", so.batch_rows, "Rows per batch sent")
      ->check(CLI::PositiveNumber)->capture_default_str();
  send->add_option("--max-pending-batches", so.max_pending_batches,
                   "Batches in flight at once (pipelining)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  send->add_option("--schema-from", so.schema_from,
                   "Parquet/Arrow file whose schema types CSV and JSON Lines columns");
  send->add_option("--failed-rows", so.failed_rows,
                   "Quarantine file for rows that did not land (.parquet, .arrow or .arrows)");
  send->add_flag("--overwrite-failed-rows", so.overwrite_failed_rows,
                 "Replace an existing --failed-rows file");
  send->add_flag("--drop-quarantine-columns", so.drop_quarantine_columns,
                 "Drop _source_file, _source_row, _error, _in_doubt from the inputs (re-sending "
                 "a quarantine file)");
  send->add_option("--checkpoint", so.checkpoint,
                   "Resume file: rows before its position are never sent again");
  send->add_option("--report-json", so.report_json, "Write the final summary as JSON here");
  send->add_option("--progress", so.progress, "auto, bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))->capture_default_str();
  send->add_flag("--quiet,-q", so.quiet, "No progress and no summary");
  send->add_option("--max-errors", so.max_errors, "Failed rows to print")->capture_default_str();
  send->add_option("--drain-timeout-s", so.drain_timeout_s,
                   "After Ctrl-C, how long to wait for the rows in flight")
      ->capture_default_str();

  arrow_zerobus::emulator::EmulatorCommand serve_command;
  auto* serve = app.add_subcommand("serve", "Run the local Zerobus server (the emulator)");
  arrow_zerobus::emulator::AddEmulatorOptions(*serve, serve_command);

  std::string table_dir;
  int64_t limit = 10;
  auto* show = app.add_subcommand("show", "Schema, row count and first rows of a local Delta table");
  show->add_option("table_dir", table_dir, "The table's directory, e.g. zerobus-local/main/default/t")
      ->required();
  show->add_option("--limit", limit, "Rows to print")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : cli::kExitUsage;
  }
  if (send->parsed()) return cli::RunSend(so);
  if (describe->parsed()) return Describe(path, message_name, table_name, declaration_out);
  if (encode->parsed()) return Encode(path, repeat, max_errors);
  if (show->parsed()) return cli::RunShow(table_dir, limit);
  if (serve->parsed()) {
    if (int code = arrow_zerobus::emulator::BuildEmulatorOptions(serve_command, "zerobus-arrow serve")) {
      return code;
    }
    return arrow_zerobus::emulator::ServeUntilSignal(serve_command.options, "zerobus-arrow serve");
  }
  return cli::kExitUsage;
}
