// The emulator's command line, shared by the zerobus-emulator program and `zerobus-arrow serve`:
// the options, their translation into EmulatorOptions, and serving until SIGINT/SIGTERM.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "server/emulator.h"

namespace arrow_zerobus::emulator {

// What the command line sets; AddEmulatorOptions binds each flag to a field.
struct EmulatorCommand {
  EmulatorOptions options = EmulatorOptions::Defaults();
  std::string sink = "delta";
  std::vector<std::string> clients, tables, fault_json;
  int64_t token_lifetime_s = EmulatorOptions::Defaults().token_lifetime.count();
  bool no_fsync = false;
  bool quiet = false;
  std::string log_level;  // empty: AZ_LOG_LEVEL if set, else info
  std::string fault_table, end_stream, close_signal;
  int64_t ack_delay_ms = 0, times = 0;
  double block_creation_s = 0, max_records = 0, max_bytes = 0;
  bool withhold = false;
};

void AddEmulatorOptions(CLI::App& app, EmulatorCommand& c);
// Checks the parsed flags and fills c.options; a non-zero exit code (2) after printing why.
// Also points the process's log facility (arrow_zerobus/log.h) at stderr with the chosen level:
// the emulator's stream lines and the library's records go through that one setting.
int BuildEmulatorOptions(EmulatorCommand& c, const std::string& program);
// Starts the emulator, prints "<program> listening grpc=HOST:PORT http=HOST:PORT tls=on|off" on
// stdout, serves until SIGINT or SIGTERM, then shuts down cleanly. Returns the exit code.
int ServeUntilSignal(const EmulatorOptions& options, const std::string& program);

}  // namespace arrow_zerobus::emulator
