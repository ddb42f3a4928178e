// The local Zerobus server: gRPC EphemeralStream service + HTTP side (OAuth token endpoint,
// Unity Catalog tables endpoint, admin API) + tables on disk. Tests start it in-process on free
// loopback ports; the `zerobus-emulator` executable wraps it.
//
// Thread-safety: Start/Shutdown must not race each other; every other method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>
#include <nlohmann/json_fwd.hpp>

#include "server/faults.h"
#include "store/table_store.h"

namespace arrow_zerobus::emulator {

class TokenStore;

struct TableDeclaration {
  std::string name;  // catalog.schema.table
  std::shared_ptr<arrow::Schema> schema;
};

struct EmulatorOptions {
  // Where the Delta tables live (required for the Delta sink).
  std::string data_dir;
  SinkKind sink = SinkKind::kDelta;
  // Address both servers bind to.
  std::string host = "127.0.0.1";
  int grpc_port = 0;  // 0 = pick a free port
  int http_port = 0;  // 0 = pick a free port
  // PEM files; both set = TLS on the gRPC and the HTTP side, neither = plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Skip the token check on the gRPC side (quick local use only).
  bool no_auth = false;
  // Service principals: client id -> client secret.
  std::map<std::string, std::string> principals;
  std::chrono::seconds token_lifetime{3600};
  // Unknown tables are NOT_FOUND instead of being created by the first stream.
  bool strict = false;
  std::vector<TableDeclaration> tables;
  // Commit grouping (see TableStoreOptions).
  int commit_interval_ms = 50;
  int64_t commit_max_rows = 1'000'000;
  bool fsync = true;
  // Largest ingest message accepted (protocol limit); larger ones are INVALID_ARGUMENT.
  int64_t max_message_bytes = 10 * 1024 * 1024;
  // A stream stops reading while this many wire bytes are appended but not yet durable, so a
  // fast client cannot grow the server's memory without bound (gRPC flow control pushes back).
  int64_t max_pending_bytes_per_stream = 64 * 1024 * 1024;
  // Called with one line per stream opened, ended or refused (never holds secrets); must be
  // thread-safe. Empty = silent.
  std::function<void(const std::string&)> log;
  // Faults in force from the start.
  std::vector<FaultRule> faults;
  // Refuse stream creation (6006) for this long from the start (0 = not).
  std::chrono::milliseconds block_creation{0};

  static EmulatorOptions Defaults() { return EmulatorOptions(); }
};

// Loads a table declaration file (JSON, see SchemaFromDeclaration) for `name`.
arrow::Result<TableDeclaration> LoadTableDeclaration(const std::string& name,
                                                     const std::string& path);

class Emulator {
 public:
  explicit Emulator(EmulatorOptions options);
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // Opens the tables, declares the configured ones, binds both ports and starts serving.
  arrow::Status Start();
  // Ends every open stream (CANCELLED after a short grace), stops both servers, commits what is
  // pending. Idempotent; the destructor calls it.
  arrow::Status Shutdown();

  int grpc_port() const;
  int http_port() const;
  // "http://127.0.0.1:P" or "https://127.0.0.1:P" (gRPC / HTTP side).
  std::string grpc_endpoint() const;
  std::string http_endpoint() const;

  TokenStore& tokens();
  FaultRegistry& faults();
  TableStore& store();
  // The /admin/stats document: {"tables": [...], "streams": [...], "tokens_issued": n}.
  nlohmann::json Stats() const;
  // Number of streams whose RPC is still running.
  int64_t open_streams() const;

  const EmulatorOptions& options() const;

 private:
  arrow::Status StartParts();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace arrow_zerobus::emulator
