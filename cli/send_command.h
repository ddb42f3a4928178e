// zerobus-arrow send: every row of the inputs to one table, streamed (bounded memory),
// pipelined through ZerobusWrapper, with progress, a quarantine file for the rows that did not
// land, a checkpoint to resume from, and a JSON report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace arrow_zerobus::cli {

// Exit codes of send (docs/cli.md).
inline constexpr int kExitAllLanded = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitSomeFailed = 3;
inline constexpr int kExitInterrupted = 130;

struct SendCommandOptions {
  std::vector<std::string> inputs;
  // Connection: a YAML file or ZEROBUS_* variables, overridden by flags. With no endpoint at
  // all, an emulator runs in-process and writes into local_dir.
  std::string config_file, endpoint, table, unity_catalog_url, client_id;
  std::string local_dir = "zerobus-local";
  int streams = 0;
  // protobuf | json | arrow_flight and none | lz4_frame | zstd; empty: from the configuration.
  std::string transport, ipc_compression;
  int64_t batch_rows = 64 * 1024;
  int max_pending_batches = 8;
  int max_errors = 20;
  std::string schema_from;
  bool drop_quarantine_columns = false;
  std::string failed_rows;
  bool overwrite_failed_rows = false;
  std::string checkpoint;
  std::string report_json;
  std::string progress = "auto";  // auto | bar | lines | none
  bool quiet = false;
  double drain_timeout_s = 30;
};

int RunSend(const SendCommandOptions& options);

}  // namespace arrow_zerobus::cli
