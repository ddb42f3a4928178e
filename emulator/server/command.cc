#include "server/command.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include <nlohmann/json.hpp>
#include <pthread.h>

#include "arrow_zerobus/log.h"
#include "server/faults.h"

namespace arrow_zerobus::emulator {

namespace {

int Fail(const std::string& program, const std::string& message) {
  std::cerr << program << ": " << message << std::endl;
  return 2;
}

// "a:b:c" -> up to `max_parts` parts (the last keeps any further colons).
std::vector<std::string> SplitColon(const std::string& s, size_t max_parts) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (out.size() + 1 < max_parts) {
    size_t c = s.find(':', pos);
    if (c == std::string::npos) break;
    out.push_back(s.substr(pos, c - pos));
    pos = c + 1;
  }
  out.push_back(s.substr(pos));
  return out;
}

bool ParseInt(const std::string& s, int64_t* out) {
  try {
    size_t used = 0;
    *out = std::stoll(s, &used);
    return used == s.size() && *out >= 0;
  } catch (...) {
    return false;
  }
}

LogSeverity SeverityNamed(const std::string& name) {
  if (name == "debug") return LogSeverity::kDebug;
  if (name == "warning") return LogSeverity::kWarning;
  if (name == "error") return LogSeverity::kError;
  if (name == "off") return LogSeverity::kOff;
  return LogSeverity::kInfo;
}

// The stream lines are info records, so a served emulator shows them unless a level above info
// was asked for (--log-level, or AZ_LOG_LEVEL as for the library alone).
void ConfigureLogging(const std::string& level) {
  if (!level.empty()) {
    SetLogThreshold(SeverityNamed(level));
  } else if (std::getenv("AZ_LOG_LEVEL") == nullptr) {
    SetLogThreshold(LogSeverity::kInfo);
  }
  SetLogSink([](LogSeverity severity, std::string_view message) {
    const char* level = severity >= LogSeverity::kError     ? "ERROR: "
                        : severity >= LogSeverity::kWarning ? "WARNING: "
                        : severity <= LogSeverity::kDebug   ? "DEBUG: "
                                                            : "";
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    std::fprintf(stderr, "zerobus-emulator: %s%.*s\n", level, static_cast<int>(message.size()),
                 message.data());
  });
}

}  // namespace

void AddEmulatorOptions(CLI::App& app, EmulatorCommand& c) {
  app.add_option("--data-dir", c.options.data_dir, "Directory of the Delta tables (delta sink)");
  app.add_option("--host", c.options.host, "Address to bind both servers to")
      ->capture_default_str();
  app.add_option("--grpc-port", c.options.grpc_port, "gRPC port (0 = pick a free port)")
      ->capture_default_str();
  app.add_option("--http-port", c.options.http_port,
                 "HTTP port for OAuth, Unity Catalog and admin endpoints (0 = pick a free port)")
      ->capture_default_str();
  app.add_option("--tls-cert", c.options.tls_cert_file, "PEM certificate: serve TLS on both ports")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", c.options.tls_key_file, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_flag("--no-auth", c.options.no_auth, "Accept streams without a token (local use only)");
  app.add_option("--client", c.clients, "Service principal CLIENT_ID:CLIENT_SECRET (repeatable)");
  app.add_option("--token-lifetime-s", c.token_lifetime_s, "Lifetime of issued tokens in seconds")
      ->capture_default_str();
  app.add_flag("--strict", c.options.strict,
               "Unknown tables are NOT_FOUND (declare tables with --table)");
  app.add_option("--table", c.tables,
                 "Declare a table: CATALOG.SCHEMA.TABLE=DECLARATION.json (repeatable)");
  app.add_option("--sink", c.sink, "Where rows go: delta (tables on disk) or null (discard)")
      ->check(CLI::IsMember({"delta", "null"}))
      ->capture_default_str();
  app.add_option("--commit-interval-ms", c.options.commit_interval_ms,
                 "Commit pending rows after this long")
      ->capture_default_str();
  app.add_option("--commit-max-rows", c.options.commit_max_rows,
                 "Commit once this many rows are pending")
      ->capture_default_str();
  app.add_flag("--no-fsync", c.no_fsync, "Do not fsync commits (benchmarks only)");
  app.add_option("--max-message-bytes", c.options.max_message_bytes,
                 "Largest ingest request accepted")
      ->capture_default_str();
  app.add_flag("--quiet", c.quiet, "Do not log streams opened/ended on stderr");
  app.add_option("--log-level", c.log_level,
                 "Least severity logged on stderr: debug, info, warning, error or off (default: "
                 "AZ_LOG_LEVEL if set, else info)")
      ->check(CLI::IsMember({"debug", "info", "warning", "error", "off"}));

  // Faults. --fault takes the JSON of POST /admin/faults; the others build one rule that
  // --fault-table targets.
  app.add_option("--fault", c.fault_json, "A fault rule as JSON (see docs/emulator.md), repeatable")
      ->group("Faults");
  app.add_option("--fault-table", c.fault_table, "Table the --fault-* flags apply to (default all)")
      ->group("Faults");
  app.add_option("--fault-end-stream", c.end_stream,
                 "N:CODE[:MESSAGE] end each stream with gRPC status CODE after N requests")
      ->group("Faults");
  app.add_option("--fault-ack-delay-ms", c.ack_delay_ms, "Send acks this long after durability")
      ->group("Faults");
  app.add_flag("--fault-withhold-acks", c.withhold, "Send no acks")->group("Faults");
  app.add_option("--fault-close-signal", c.close_signal,
                 "N:DURATION_MS send CloseStreamSignal after N requests, end the RPC after it")
      ->group("Faults");
  app.add_option("--fault-block-creation-s", c.block_creation_s,
                 "Refuse stream creation (UNAVAILABLE 6006) for this many seconds")
      ->group("Faults");
  app.add_option("--fault-max-records-per-s", c.max_records, "Per-stream record quota (acks pace)")
      ->group("Faults");
  app.add_option("--fault-max-bytes-per-s", c.max_bytes, "Per-stream byte quota (acks pace)")
      ->group("Faults");
  app.add_option("--fault-times", c.times,
                 "How many streams --fault-end-stream / --fault-close-signal fire on (0 = all)")
      ->group("Faults");

}

int BuildEmulatorOptions(EmulatorCommand& c, const std::string& program) {

  c.options.sink = c.sink == "null" ? arrow_zerobus::emulator::SinkKind::kNull
                                : arrow_zerobus::emulator::SinkKind::kDelta;
  c.options.fsync = !c.no_fsync;
  c.options.token_lifetime = std::chrono::seconds(c.token_lifetime_s);
  if (c.options.sink == arrow_zerobus::emulator::SinkKind::kDelta && c.options.data_dir.empty()) {
    return Fail(program, "--data-dir is required with --sink delta");
  }
  for (const auto& client : c.clients) {
    size_t colon = client.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == client.size()) {
      return Fail(program, "--client must be CLIENT_ID:CLIENT_SECRET");
    }
    c.options.principals[client.substr(0, colon)] = client.substr(colon + 1);
  }
  if (!c.options.no_auth && c.options.principals.empty()) {
    return Fail(program, "give at least one --client CLIENT_ID:CLIENT_SECRET, or --no-auth");
  }
  for (const auto& t : c.tables) {
    size_t eq = t.find('=');
    if (eq == std::string::npos) return Fail(program, "--table must be CATALOG.SCHEMA.TABLE=FILE.json");
    auto decl = arrow_zerobus::emulator::LoadTableDeclaration(t.substr(0, eq), t.substr(eq + 1));
    if (!decl.ok()) return Fail(program, decl.status().message());
    c.options.tables.push_back(std::move(*decl));
  }
  for (const auto& j : c.fault_json) {
    auto parsed = nlohmann::json::parse(j, nullptr, false);
    if (parsed.is_discarded()) return Fail(program, "--fault is not JSON: " + j);
    auto rule = arrow_zerobus::emulator::FaultRuleFromJson(parsed);
    if (!rule.ok()) return Fail(program, "--fault: " + rule.status().message());
    c.options.faults.push_back(std::move(*rule));
  }
  FaultRule rule;
  bool any = false;
  if (!c.fault_table.empty()) {
    nlohmann::json j = {{"table", c.fault_table}};
    auto checked = arrow_zerobus::emulator::FaultRuleFromJson(j);
    if (!checked.ok()) return Fail(program, "--fault-table: " + checked.status().message());
    rule.table = checked->table;
  }
  if (!c.end_stream.empty()) {
    auto parts = SplitColon(c.end_stream, 3);
    arrow_zerobus::emulator::EndStreamFault f;
    auto code = parts.size() >= 2 ? arrow_zerobus::emulator::ParseGrpcCode(parts[1]) : std::nullopt;
    if (parts.size() < 2 || !ParseInt(parts[0], &f.after_requests) || !code || *code == 0) {
      return Fail(program, "--fault-end-stream must be N:CODE[:MESSAGE] with a non-OK gRPC code");
    }
    f.code = *code;
    if (parts.size() == 3) f.message = parts[2];
    rule.end_stream = f;
    any = true;
  }
  if (!c.close_signal.empty()) {
    auto parts = SplitColon(c.close_signal, 2);
    arrow_zerobus::emulator::CloseSignalFault f;
    if (parts.size() != 2 || !ParseInt(parts[0], &f.after_requests) ||
        !ParseInt(parts[1], &f.duration_ms)) {
      return Fail(program, "--fault-close-signal must be N:DURATION_MS");
    }
    rule.close_signal = f;
    any = true;
  }
  if (c.ack_delay_ms < 0 || c.max_records < 0 || c.max_bytes < 0 || c.times < 0 || c.block_creation_s < 0) {
    return Fail(program, "fault values must not be negative");
  }
  rule.ack_delay_ms = c.ack_delay_ms;
  rule.withhold_acks = c.withhold;
  rule.max_records_per_s = c.max_records;
  rule.max_bytes_per_s = c.max_bytes;
  rule.times = c.times;
  any = any || c.ack_delay_ms > 0 || c.withhold || c.max_records > 0 || c.max_bytes > 0;
  if (any) c.options.faults.push_back(rule);
  c.options.block_creation =
      std::chrono::milliseconds(static_cast<int64_t>(c.block_creation_s * 1000.0));

  ConfigureLogging(c.log_level);
  if (!c.quiet) {
    c.options.log = [](const std::string& line) { Log(LogSeverity::kInfo, line); };
  }

  return 0;
}

int ServeUntilSignal(const EmulatorOptions& options, const std::string& program) {
  // Block the stop signals before any thread starts so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Emulator emulator(options);
  auto st = emulator.Start();
  if (!st.ok()) return Fail(program, st.ToString());
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                                   : options.host;
  std::printf("%s listening grpc=%s:%d http=%s:%d tls=%s\n", program.c_str(), host.c_str(),
              emulator.grpc_port(), host.c_str(), emulator.http_port(),
              options.tls_cert_file.empty() ? "off" : "on");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Log(LogSeverity::kInfo, "signal " + std::to_string(sig) + ", shutting down");
  st = emulator.Shutdown();
  if (!st.ok()) return Fail(program, "shutdown: " + st.ToString());
  return 0;
}

}  // namespace arrow_zerobus::emulator
