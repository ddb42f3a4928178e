// zerobus-emulator: the local Zerobus server as a program. Prints one line saying where it
// listens, serves until SIGINT/SIGTERM, then shuts down cleanly (pending rows are committed).
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <pthread.h>

#include "server/emulator.h"
#include "server/faults.h"

namespace arrow_zerobus::emulator {
const char* EmulatorVersion();
}

namespace {

using arrow_zerobus::emulator::Emulator;
using arrow_zerobus::emulator::EmulatorOptions;
using arrow_zerobus::emulator::FaultRule;

int Fail(const std::string& message) {
  std::cerr << "zerobus-emulator: " << message << std::endl;
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

}  // namespace

int main(int argc, char** argv) {
  EmulatorOptions options = EmulatorOptions::Defaults();
  CLI::App app{
      "zerobus-emulator: a local Zerobus Ingest server (gRPC EphemeralStream + OAuth + Unity "
      "Catalog tables endpoint + admin API) that lands rows in Delta tables on disk."};
  app.set_version_flag("--version", std::string(arrow_zerobus::emulator::EmulatorVersion()));

  std::string sink = "delta";
  std::vector<std::string> clients, tables, fault_json;
  int64_t token_lifetime_s = options.token_lifetime.count();
  bool no_fsync = false;
  app.add_option("--data-dir", options.data_dir, "Directory of the Delta tables (delta sink)");
  app.add_option("--host", options.host, "Address to bind both servers to")
      ->capture_default_str();
  app.add_option("--grpc-port", options.grpc_port, "gRPC port (0 = pick a free port)")
      ->capture_default_str();
  app.add_option("--http-port", options.http_port,
                 "HTTP port for OAuth, Unity Catalog and admin endpoints (0 = pick a free port)")
      ->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert_file, "PEM certificate: serve TLS on both ports")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_flag("--no-auth", options.no_auth, "Accept streams without a token (local use only)");
  app.add_option("--client", clients, "Service principal CLIENT_ID:CLIENT_SECRET (repeatable)");
  app.add_option("--token-lifetime-s", token_lifetime_s, "Lifetime of issued tokens in seconds")
      ->capture_default_str();
  app.add_flag("--strict", options.strict,
               "Unknown tables are NOT_FOUND (declare tables with --table)");
  app.add_option("--table", tables,
                 "Declare a table: CATALOG.SCHEMA.TABLE=DECLARATION.json (repeatable)");
  app.add_option("--sink", sink, "Where rows go: delta (tables on disk) or null (discard)")
      ->check(CLI::IsMember({"delta", "null"}))
      ->capture_default_str();
  app.add_option("--commit-interval-ms", options.commit_interval_ms,
                 "Commit pending rows after this long")
      ->capture_default_str();
  app.add_option("--commit-max-rows", options.commit_max_rows,
                 "Commit once this many rows are pending")
      ->capture_default_str();
  app.add_flag("--no-fsync", no_fsync, "Do not fsync commits (benchmarks only)");
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "Largest ingest request accepted")
      ->capture_default_str();
  bool quiet = false;
  app.add_flag("--quiet", quiet, "Do not log streams opened/ended on stderr");

  // Faults. --fault takes the JSON of POST /admin/faults; the others build one rule that
  // --fault-table targets.
  std::string fault_table, end_stream, close_signal;
  int64_t ack_delay_ms = 0, times = 0;
  double block_creation_s = 0, max_records = 0, max_bytes = 0;
  bool withhold = false;
  app.add_option("--fault", fault_json, "A fault rule as JSON (see docs/emulator.md), repeatable")
      ->group("Faults");
  app.add_option("--fault-table", fault_table, "Table the --fault-* flags apply to (default all)")
      ->group("Faults");
  app.add_option("--fault-end-stream", end_stream,
                 "N:CODE[:MESSAGE] end each stream with gRPC status CODE after N requests")
      ->group("Faults");
  app.add_option("--fault-ack-delay-ms", ack_delay_ms, "Send acks this long after durability")
      ->group("Faults");
  app.add_flag("--fault-withhold-acks", withhold, "Send no acks")->group("Faults");
  app.add_option("--fault-close-signal", close_signal,
                 "N:DURATION_MS send CloseStreamSignal after N requests, end the RPC after it")
      ->group("Faults");
  app.add_option("--fault-block-creation-s", block_creation_s,
                 "Refuse stream creation (UNAVAILABLE 6006) for this many seconds")
      ->group("Faults");
  app.add_option("--fault-max-records-per-s", max_records, "Per-stream record quota (acks pace)")
      ->group("Faults");
  app.add_option("--fault-max-bytes-per-s", max_bytes, "Per-stream byte quota (acks pace)")
      ->group("Faults");
  app.add_option("--fault-times", times,
                 "How many streams --fault-end-stream / --fault-close-signal fire on (0 = all)")
      ->group("Faults");

  CLI11_PARSE(app, argc, argv);

  options.sink = sink == "null" ? arrow_zerobus::emulator::SinkKind::kNull
                                : arrow_zerobus::emulator::SinkKind::kDelta;
  options.fsync = !no_fsync;
  options.token_lifetime = std::chrono::seconds(token_lifetime_s);
  if (options.sink == arrow_zerobus::emulator::SinkKind::kDelta && options.data_dir.empty()) {
    return Fail("--data-dir is required with --sink delta");
  }
  for (const auto& c : clients) {
    size_t colon = c.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == c.size()) {
      return Fail("--client must be CLIENT_ID:CLIENT_SECRET");
    }
    options.principals[c.substr(0, colon)] = c.substr(colon + 1);
  }
  if (!options.no_auth && options.principals.empty()) {
    return Fail("give at least one --client CLIENT_ID:CLIENT_SECRET, or --no-auth");
  }
  for (const auto& t : tables) {
    size_t eq = t.find('=');
    if (eq == std::string::npos) return Fail("--table must be CATALOG.SCHEMA.TABLE=FILE.json");
    auto decl = arrow_zerobus::emulator::LoadTableDeclaration(t.substr(0, eq), t.substr(eq + 1));
    if (!decl.ok()) return Fail(decl.status().message());
    options.tables.push_back(std::move(*decl));
  }
  for (const auto& j : fault_json) {
    auto parsed = nlohmann::json::parse(j, nullptr, false);
    if (parsed.is_discarded()) return Fail("--fault is not JSON: " + j);
    auto rule = arrow_zerobus::emulator::FaultRuleFromJson(parsed);
    if (!rule.ok()) return Fail("--fault: " + rule.status().message());
    options.faults.push_back(std::move(*rule));
  }
  FaultRule rule;
  bool any = false;
  if (!fault_table.empty()) {
    nlohmann::json j = {{"table", fault_table}};
    auto checked = arrow_zerobus::emulator::FaultRuleFromJson(j);
    if (!checked.ok()) return Fail("--fault-table: " + checked.status().message());
    rule.table = checked->table;
  }
  if (!end_stream.empty()) {
    auto parts = SplitColon(end_stream, 3);
    arrow_zerobus::emulator::EndStreamFault f;
    auto code = parts.size() >= 2 ? arrow_zerobus::emulator::ParseGrpcCode(parts[1]) : std::nullopt;
    if (parts.size() < 2 || !ParseInt(parts[0], &f.after_requests) || !code || *code == 0) {
      return Fail("--fault-end-stream must be N:CODE[:MESSAGE] with a non-OK gRPC code");
    }
    f.code = *code;
    if (parts.size() == 3) f.message = parts[2];
    rule.end_stream = f;
    any = true;
  }
  if (!close_signal.empty()) {
    auto parts = SplitColon(close_signal, 2);
    arrow_zerobus::emulator::CloseSignalFault f;
    if (parts.size() != 2 || !ParseInt(parts[0], &f.after_requests) ||
        !ParseInt(parts[1], &f.duration_ms)) {
      return Fail("--fault-close-signal must be N:DURATION_MS");
    }
    rule.close_signal = f;
    any = true;
  }
  if (ack_delay_ms < 0 || max_records < 0 || max_bytes < 0 || times < 0 || block_creation_s < 0) {
    return Fail("fault values must not be negative");
  }
  rule.ack_delay_ms = ack_delay_ms;
  rule.withhold_acks = withhold;
  rule.max_records_per_s = max_records;
  rule.max_bytes_per_s = max_bytes;
  rule.times = times;
  any = any || ack_delay_ms > 0 || withhold || max_records > 0 || max_bytes > 0;
  if (any) options.faults.push_back(rule);
  options.block_creation =
      std::chrono::milliseconds(static_cast<int64_t>(block_creation_s * 1000.0));

  if (!quiet) {
    options.log = [](const std::string& line) {
      static std::mutex mu;
      std::lock_guard<std::mutex> lock(mu);
      std::fprintf(stderr, "zerobus-emulator: %s\n", line.c_str());
    };
  }

  // Block the stop signals before any thread starts so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Emulator emulator(options);
  auto st = emulator.Start();
  if (!st.ok()) return Fail(st.ToString());
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                                   : options.host;
  std::printf("zerobus-emulator listening grpc=%s:%d http=%s:%d tls=%s\n", host.c_str(),
              emulator.grpc_port(), host.c_str(), emulator.http_port(),
              options.tls_cert_file.empty() ? "off" : "on");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "zerobus-emulator: signal %d, shutting down\n", sig);
  st = emulator.Shutdown();
  if (!st.ok()) return Fail("shutdown: " + st.ToString());
  return 0;
}
